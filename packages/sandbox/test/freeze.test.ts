// freezeSandbox with the host's cgroup driver (v1 here: the freezer hierarchy; v2 hosts: cgroup.freeze).
// The v2 path on a hybrid host is in cgroup-v2.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { have, skip } from '@tsbuild/testkit';
import { freezeSandbox, run } from '../src/index.js';
import { signalFreezer, waitFrozen } from '../src/freeze.js';
import { cgroupDriver } from '../src/cgroup/index.js';
import { checkFreeze, freshRoot, stateDir, tmp } from './helpers.js';

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

const children = (p: number): number[] =>
  (readTextOr(`/proc/${p}/task/${p}/children`) ?? '').split(' ').filter(Boolean).map(Number);
const state = (p: number): string | undefined => readTextOr(`/proc/${p}/stat`)?.split(') ')[1]?.[0];
function readTextOr(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * A sandbox (pid namespace of its own, as the launcher makes) whose init waits on a vfork child that
 * pauses: once the child is stopped, the parent stays in its vfork wait and never shows as stopped.
 */
async function vforkSandbox(): Promise<{ init: number; child: number; kill: () => void }> {
  const bin = join(tmp, 'vfork-pause');
  const src = '#include <unistd.h>\nint main(void) { if (vfork() == 0) for (;;) pause(); return 0; }\n';
  const cc = spawnSync('cc', ['-o', bin, '-x', 'c', '-'], { input: src, encoding: 'utf8' });
  assert.is(cc.status, 0, cc.stderr);
  const unshare = spawn('unshare', ['--pid', '--fork', bin], { stdio: 'ignore' });
  await new Promise((resolve) => unshare.once('spawn', resolve));
  let init: number | undefined;
  let child: number | undefined;
  while (child === undefined) {
    await sleep(5); // polls for the processes to appear; no assertion on time
    init = children(unshare.pid!)[0];
    child = init === undefined ? undefined : children(init)[0];
  }
  return { init: init!, child, kill: () => process.kill(init!, 'SIGKILL') };
}

// A process that waits on a vfork child the freeze stopped never stops itself, so the freeze can only
// time out. It must wait for that asynchronously (the event loop keeps running: Ctrl-C is handled), then
// thaw what it stopped and say why.
test('signal freezer: a freeze that cannot complete waits without blocking, then thaws every process', async () => {
  if (process.getuid?.() !== 0) return skip('needs root for unshare --pid');
  if (!have('cc') || !have('unshare')) return skip('needs cc and unshare');
  const sb = await vforkSandbox();
  try {
    let ticked = false;
    setImmediate(() => (ticked = true));
    let thawed = 0;
    const fr = signalFreezer(sb.init);
    const err: Error = await waitFrozen(fr, sb.init, 300, () => {
      thawed++;
      fr.resume!();
    }).then(
      () => assert.unreachable('froze a process that waits on a stopped vfork child') as never,
      (e: Error) => {
        assert.ok(ticked, 'the event loop did not run while the freeze was polling');
        return e;
      },
    );
    assert.match(err.message, new RegExp(`did not freeze within 300 ms \\(process ${sb.init} \\(state \\w\\)`));
    assert.is(thawed, 1, 'the timeout did not thaw');
    for (const p of [sb.init, sb.child]) assert.not.equal(state(p), 'T', `process ${p} was left stopped`);
  } finally {
    sb.kill();
  }
});

// Run in a pid namespace of its own (unshare --pid --mount-proc), where nothing else forks, so that a pid
// can be reused on purpose (ns_last_pid): a sandbox is frozen, ends, and its init's pid goes to a process
// someone else stopped. The thaw must not SIGCONT that process: it stopped another one.
const reuseHelper = `
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
const { signalFreezer } = await import(process.env.FREEZE_JS);
const kids = (p) => (readFileSync('/proc/' + p + '/task/' + p + '/children', 'utf8')).split(' ').filter(Boolean);
const state = (p) => readFileSync('/proc/' + p + '/stat', 'utf8').split(') ')[1][0];
const sb = spawn('unshare', ['--pid', '--fork', 'sleep', '1000'], { stdio: 'ignore' });
await new Promise((r) => sb.once('spawn', r));
let init;
while (!(init = Number(kids(sb.pid)[0]))) await sleep(5);
const fr = signalFreezer(init);
while (!fr.frozen()) await sleep(5);
const start = (p) => readFileSync('/proc/' + p + '/stat', 'utf8').split(') ')[1].split(' ')[19];
const initStart = start(init);
const ended = new Promise((r) => sb.once('exit', r));
process.kill(init, 'SIGKILL');
await ended;
// Start times count clock ticks (10 ms): a pid reused within the same tick cannot be told apart.
// Outside a test, reuse needs the whole pid space to go round first; here the next tick is awaited.
await sleep(20);
let other;
for (let i = 0; i < 5 && other?.pid !== init; i++) {
  other?.kill('SIGKILL');
  writeFileSync('/proc/sys/kernel/ns_last_pid', String(init - 1));
  other = spawn('sleep', ['1000'], { stdio: 'ignore' });
}
if (other.pid !== init) throw new Error('pid ' + init + ' was not reused');
if (start(other.pid) === initStart) throw new Error('pid ' + init + ' was reused within the same clock tick');
process.kill(other.pid, 'SIGSTOP');
while (state(other.pid) !== 'T') await sleep(5);
fr.resume();
process.stdout.write(JSON.stringify({ after: state(other.pid) }));
other.kill('SIGKILL');
`;

test('signal freezer: a thaw does not SIGCONT a process that reuses the pid of one it stopped', () => {
  if (process.getuid?.() !== 0) return skip('needs root for unshare --pid');
  if (!have('unshare')) return skip('needs unshare');
  const script = join(tmp, 'pid-reuse.mjs');
  writeFileSync(script, reuseHelper);
  const env = { ...process.env, FREEZE_JS: new URL('../src/freeze.js', import.meta.url).href };
  const r = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, script], {
    env,
    encoding: 'utf8',
  });
  assert.is(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout), { after: 'T' }, 'the thaw resumed a process it had not stopped');
});

test.run();
