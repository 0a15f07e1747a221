// A container's network that cannot start is tsbuild's failure around the container (docker's 125),
// recorded in its state, whichever of `run` (network started ahead of the container) or `start`
// (started by the runner) started it. Here the network cannot start because its sandbox state
// directory (where a network with published ports keeps its API socket) may be written by others.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { have, skip } from '@tsbuild/testkit';
import { Base, cleanup, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const open = join(tempDir('state'), 'open');
mkdirSync(open);
chmodSync(open, 0o777);
const badState = { TSBUILD_SANDBOX_STATE: open };
const t = (args: string[], env: Record<string, string> = {}) => tsbuild(args, { root, env });
const psLine = (name: string) =>
  ok(t(['ps', '-a']))
    .stdout.split('\n')
    .find((l) => l.trimEnd().endsWith(` ${name}`)) ?? '';
const refused = /the state directory .* is not a directory of this user that only it can write to/;

test.after(() => cleanup(root, join(open, '..')));

const rows: { what: string; args: string[] }[] = [
  { what: 'run --rm -p', args: ['run', '--rm', '-p', '127.0.0.1:18391:80', Base, 'true'] },
  { what: 'run -p', args: ['run', '--name', 'net-err-run', '-p', '127.0.0.1:18392:80', Base, 'true'] },
  { what: 'run (no port)', args: ['run', '--rm', Base, 'true'] },
];

for (const row of rows) {
  test(`${row.what}: a network that cannot start exits 125, says why, no stack trace`, () => {
    if (!have('slirp4netns')) return skip('slirp4netns is not installed (the default network needs it)');
    const r = t(row.args, badState);
    assert.is(r.code, 125, r.stderr);
    assert.match(r.stderr, refused);
    assert.not.match(r.stderr, /internal error|\n\s+at /);
  });
}

test('the container run -p left is exited (125) with the reason, not "Created"', () => {
  if (!have('slirp4netns')) return skip('slirp4netns is not installed (the default network needs it)');
  assert.match(psLine('net-err-run'), / Exited \(125\) /);
  ok(t(['rm', 'net-err-run']));
});

test('start (its supervisor starts the network): 125 with the reason, state exited (125)', () => {
  if (!have('slirp4netns')) return skip('slirp4netns is not installed (the default network needs it)');
  ok(t(['run', '-d', '--name', 'net-err-start', '-p', '127.0.0.1:18393:80', Base, 'true']));
  // `true` ends at once: its supervisor records the exit (polled; a pass does not wait a fixed time).
  for (let i = 0; !/ Exited \(0\) /.test(psLine('net-err-start')); i++) {
    if (i > 600) throw new Error('net-err-start did not end');
    spawnSync('sleep', ['0.05']);
  }
  for (const args of [
    ['start', 'net-err-start'],
    ['start', '-a', 'net-err-start'],
  ]) {
    const r = t(args, badState);
    assert.ok(r.code !== 0, `${args.join(' ')} succeeded`);
    assert.match(r.stderr, refused, args.join(' '));
    assert.match(psLine('net-err-start'), / Exited \(125\) /, args.join(' '));
  }
  ok(t(['rm', 'net-err-start']));
});

test.run();
