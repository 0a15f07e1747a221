// `tsbuild load` as `docker load` is used: the archive on stdin (a redirect, a pipe, gzipped or not), or -i of
// a path that is a pipe (/dev/stdin), read once; a terminal on stdin is a usage error (a directory: terminal.test).
// The oracle for each load is the image ID `inspect` gives in the store that saved it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Base, cleanup, command, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const saved = tempDir('load-stream');
const archive = join(saved, 'base.tar');
ok(tsbuild(['save', '-o', archive, Base], { root }));
const id = (JSON.parse(ok(tsbuild(['inspect', Base], { root })).stdout) as { Id: string }).Id;
const stores: string[] = [];

test.after(() => cleanup(root, saved, ...stores));

/** Runs `tsbuild …` in a shell line (for its redirects and pipes) against a fresh store. */
function sh(line: (tsbuild: string) => string) {
  const store = tempDir('load-stream-store');
  stores.push(store);
  const r = spawnSync('bash', ['-c', line(command)], { env: { ...process.env, CI: 'true', TSBUILD_ROOT: store } });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString(), store };
}

const loads: [string, (t: string) => string][] = [
  ['stdin redirected from the file', (t) => `${t} load < ${archive}`],
  ['stdin a pipe', (t) => `cat ${archive} | ${t} load`],
  ['stdin a pipe, gzipped', (t) => `gzip -1c ${archive} | ${t} load`],
  ['-i /dev/stdin, a pipe (read once)', (t) => `cat ${archive} | ${t} load -i /dev/stdin`],
  ['-i the file', (t) => `${t} load -i ${archive}`],
];
for (const [name, line] of loads)
  test(`load: ${name}`, () => {
    const r = sh(line);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Loaded image: (docker\\.io/)?${Base}$`, 'm'));
    const got = JSON.parse(ok(tsbuild(['inspect', Base], { root: r.store })).stdout) as { Id: string };
    assert.is(got.Id, id, 'the same image as saved');
  });

test('load with a terminal on stdin and no -i: a usage error, exit 2', () => {
  const store = tempDir('load-stream-tty');
  stores.push(store);
  const r = spawnSync('script', ['-qec', `${command} load`, '/dev/null'], {
    env: { ...process.env, TSBUILD_ROOT: store },
    encoding: 'utf8',
  });
  assert.is(r.status, 2, r.stdout);
  assert.match(r.stdout, 'stdin is a terminal');
});

test('load of an empty stdin: an error, exit 1, nothing loaded', () => {
  const r = sh((t) => `${t} load < /dev/null`);
  assert.is(r.code, 1, r.stderr);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
});

test.run();
