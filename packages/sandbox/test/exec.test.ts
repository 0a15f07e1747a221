// exec (entering a running sandbox), tty mode, and bind targets inside /dev.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { exec, run } from '../src/index.js';
import { Collect, sh, freshRoot, stateDir, tmp } from './helpers.js';

test('a file bound at /dev/pipes/x is readable and executable', async () => {
  const script = join(tmp, 'pipe-script');
  writeFileSync(script, '#!/bin/sh\necho from-pipe "$@"\n');
  chmodSync(script, 0o755);
  const r = await sh('cat /dev/pipes/x >/dev/null && /dev/pipes/x ok && ls /dev/null', {
    mounts: [{ type: 'bind', source: script, target: '/dev/pipes/x', readonly: true }],
  });
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /from-pipe ok/);
});

test('tty: the command gets a terminal from the container devpts', async () => {
  const r = await sh('tty; [ -t 0 ] && [ -t 1 ] && echo is-a-tty; echo err >&2', { tty: true });
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^\/dev\/pts\/0\r?\n/);
  assert.match(r.out, /is-a-tty/);
  assert.match(r.out, /err/); // stderr goes to the terminal too
});

test('tty: exit codes and signals are reported as without one', async () => {
  assert.is((await sh('exit 7', { tty: true })).code, 7);
  const k = await sh('kill -9 $$', { tty: true, init: true });
  assert.is(k.code, 137);
  const own = await sh('kill -9 $$; exit 5', { tty: true });
  assert.is(own.code, 5, 'the command is PID 1: SIGKILL from inside is ignored');
});

test('exec joins the namespaces of a running sandbox', async () => {
  const ac = new AbortController();
  let pid = 0;
  let ended!: Promise<unknown>;
  const started = new Promise<void>((res) => {
    ended = run({
      root: freshRoot(),
      argv: ['sh', '-c', 'echo hi > /tmp/marker; exec sleep 60'],
      env: ['PATH=/bin:/usr/bin'],
      cwd: '/',
      uid: 0,
      gid: 0,
      network: 'none',
      hostname: 'box1',
      stateDir,
      signal: ac.signal,
      onStart: (p) => {
        pid = p;
        res();
      },
    }).catch(() => {});
  });
  await started;
  // Wait for the marker and for the shell to have become sleep (the command may not have run yet):
  // for that state, however long it takes; the deadline only bounds a failure.
  let out = new Collect();
  for (const end = Date.now() + 60_000; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
    out = new Collect();
    const e = await exec({
      pid,
      argv: ['sh', '-c', 'cat /tmp/marker && hostname && ps -o pid,args && ip link 2>/dev/null | grep -c "^[0-9]"'],
      env: ['PATH=/bin:/usr/bin'],
      cwd: '/',
      uid: 0,
      gid: 0,
      stdout: out,
      stderr: out,
    });
    if (e.code === 0 && /\n\s*\d+ sleep 60\n/.test(out.text)) break;
  }
  ac.abort();
  assert.match(out.text, /^hi\nbox1\n/, out.text);
  // The container's pid namespace: the command is PID 1.
  assert.match(out.text, /\n\s*1 sleep 60\n/, out.text);
  const tty = new Collect();
  // A stopped sandbox can no longer be entered: once run() has settled, it is torn down.
  await ended;
  try {
    await exec({ pid, argv: ['true'], env: [], cwd: '/', uid: 0, gid: 0, stdout: tty });
    assert.unreachable('exec into a stopped sandbox');
  } catch (e) {
    assert.is((e as Error).name, 'SandboxError', (e as Error).message);
  }
});

test.run();
