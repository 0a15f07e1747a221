// freezeSandbox with the host's cgroup driver (v1 here: the freezer hierarchy; v2 hosts: cgroup.freeze).
// The v2 path on a hybrid host is in cgroup-v2.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { freezeSandbox, run } from '../src/index.js';
import { signalFreezer } from '../src/freeze.js';
import { cgroupDriver } from '../src/cgroup/index.js';
import { checkFreeze, freshRoot, stateDir } from './helpers.js';

test('freezeSandbox stops every process of a freezable run until thawed', async () => {
  const r = await checkFreeze(freezeSandbox);
  assert.ok(r.a !== '', 'the loop never counted');
  assert.is(r.b, r.a, 'the count moved while frozen');
  assert.ok(r.moved, 'the count did not move again after the thaw');
});

test('freezeSandbox refuses a pid that is not running, and (v1) a run that is not freezable', async () => {
  await freezeSandbox(2 ** 22 + 7).then(
    () => assert.unreachable('froze a pid that does not exist'),
    (e: Error) => {
      assert.match(e.message, /not running/);
    },
  );
  if (cgroupDriver()?.version !== 1) return; // v2: every run can be frozen
  const ac = new AbortController();
  let pid = 0;
  await new Promise<void>((resolve) => {
    void run({
      root: freshRoot(),
      argv: ['sleep', '60'],
      env: ['PATH=/bin'],
      cwd: '/',
      uid: 0,
      gid: 0,
      network: 'none',
      stateDir,
      signal: ac.signal,
      onStart: (p) => {
        pid = p;
        resolve();
      },
    }).catch(() => {});
  });
  try {
    await freezeSandbox(pid).then(
      () => assert.unreachable('froze a run without a freezer cgroup'),
      (e: Error) => {
        assert.match(e.message, /no freezer cgroup/);
      },
    );
  } finally {
    ac.abort();
  }
});

// Rootless without a cgroup the sandbox is stopped by signals, every process of its pid namespace. A pid
// that is no sandbox's init (reused since the container ended) may be in this process's own namespace:
// stopping that namespace would stop this process and every other of the user's. Only the freezer is
// made here (no signal is sent before frozen() is called), so the check is safe to make without it.
test("rootless signal freezer: a pid in this process's own pid namespace is refused, nothing stopped", async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await new Promise((resolve) => child.once('spawn', resolve));
    assert.throws(() => signalFreezer(child.pid!), /not a sandbox: .*pid namespace/);
  } finally {
    child.kill('SIGKILL');
  }
});

test.run();
