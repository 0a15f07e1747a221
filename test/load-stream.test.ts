// `tsbuild load` and `save` as `docker load` and `docker save` are used: the archive on stdin (a redirect, a pipe,
// gzipped or not) or -i of a path that is a pipe (/dev/stdin), read once; `save` without -o to stdout; a terminal on
// stdin or stdout is a usage error (a directory: terminal.test). The oracle for each load is the image ID `inspect`
// gives in the store that saved it, and Docker's own `docker load` of what `save` wrote to stdout.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { skip, startDockerd } from '@tsbuild/testkit';
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
  ['stdin a pipe, zstd-compressed', (t) => `zstd -qc ${archive} | ${t} load`],
  ['-i /dev/stdin, a pipe (read once)', (t) => `cat ${archive} | ${t} load -i /dev/stdin`],
  ['-i the file', (t) => `${t} load -i ${archive}`],
  ['stdin a pipe from save without -o', (t) => `TSBUILD_ROOT=${root} ${t} save ${Base} | ${t} load`],
  ['stdin a pipe from save --format oci', (t) => `TSBUILD_ROOT=${root} ${t} save --format oci ${Base} | ${t} load`],
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

test('save with a terminal as stdout and no -o: a usage error, exit 2, nothing written', () => {
  const log = join(tempDir('save-tty'), 'log');
  stores.push(dirname(log));
  const r = spawnSync('script', ['-qec', `${command} save ${Base}`, log], {
    env: { ...process.env, TSBUILD_ROOT: root },
    encoding: 'utf8',
  });
  assert.is(r.status, 2, r.stdout);
  assert.match(r.stdout, 'stdout is a terminal');
  assert.ok(statSync(log).size < 1000, 'no archive on the terminal');
});

test('save to stdout: docker load takes it (a private dockerd)', async () => {
  const daemon = await startDockerd(tempDir('save-dockerd'));
  if (typeof daemon === 'string') return skip(daemon);
  try {
    const r = spawnSync('bash', ['-c', `${command} save ${Base} | docker -H ${daemon.host} load`], {
      env: { ...process.env, CI: 'true', TSBUILD_ROOT: root },
      encoding: 'utf8',
    });
    assert.is(r.status, 0, r.stderr);
    const listed = daemon.docker(['images', '--no-trunc', '--format', '{{.ID}}']);
    assert.ok(listed.stdout.split('\n').includes(id), listed.stdout);
  } finally {
    await daemon.stop();
  }
});

test('load of an empty stdin: an error, exit 1, nothing loaded', () => {
  const r = sh((t) => `${t} load < /dev/null`);
  assert.is(r.code, 1, r.stderr);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
});

test.run();
