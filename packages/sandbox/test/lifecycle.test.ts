// Ending badly: the caller aborts, or the Node process that started the run is SIGKILLed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { run } from '../src/index.js';
import {
  freshRoot,
  stateDir,
  tmp,
  hostMountsMention,
  processesWith,
  runCgroupsNamedFor,
  runCgroupsOf,
  sh,
  listTree,
} from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Waits for `cond`; the deadline only bounds a failure (a loaded machine only makes it later). */
async function until(cond: () => boolean, ms = 60_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) if (cond()) return true;
  return cond();
}

test('abort kills everything, unmounts and removes the cgroup', async () => {
  const marker = `abort-marker-${process.pid}`;
  const root = freshRoot();
  const ac = new AbortController();
  let seen = '';
  let init = 0;
  let during: string[] = [];
  // Its pid is reported once it has exec'd, its output may come first: both are waited for.
  const ready = () => {
    if (init && seen.includes('started') && !ac.signal.aborted) {
      // The run's cgroups, seen from the host while it runs: what must be gone afterwards.
      during = runCgroupsOf(init).filter((d) => existsSync(d));
      ac.abort();
    }
  };
  const out = new Writable({
    write(c, _e, cb) {
      seen += c;
      ready();
      cb();
    },
  });
  const p = run({
    root,
    argv: ['sh', '-c', `sleep 1000 & echo started; sleep 1000; : ${marker}`],
    env: ['PATH=/bin'],
    cwd: '/',
    uid: 0,
    gid: 0,
    network: 'none',
    stdout: out,
    signal: ac.signal,
    stateDir,
    limits: { pidsLimit: 100 },
    onStart: (pid) => {
      init = pid;
      ready();
    },
  });
  const err = await p.then(
    () => undefined,
    (e: Error) => e,
  );
  assert.is(err?.name, 'AbortError');
  assert.equal(processesWith(marker), []);
  assert.not.ok(hostMountsMention(root.upperdir));
  assert.ok(during.length > 0, 'the run had a cgroup while it ran');
  for (const d of during) assert.not.ok(existsSync(d), `${d} is left behind`);
  assert.equal(runCgroupsNamedFor(process.pid), []);
});

test('an already aborted signal never starts the run', async () => {
  const err = await sh(['true'], { signal: AbortSignal.abort() }).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.is(err?.name, 'AbortError');
});

// The command is PID 1, and a change of uid clears the parent-death signal: without arming it again,
// a non-root command outlived its launcher (and with it the whole pid namespace).
for (const uid of [0, 65534]) {
  test(`a PID-1 command of uid ${uid} dies with its launcher (SIGKILL)`, async () => {
    const marker = `launcher-death-${uid}-${process.pid}`;
    let pid = 0;
    let seen = '';
    // Its pid is reported once it has exec'd, its output may come first: both are waited for.
    const started = new Promise<void>((resolve) => {
      const ready = () => {
        if (pid && seen.includes('started')) resolve();
      };
      const out = new Writable({
        write(c, _e, cb) {
          seen += c;
          ready();
          cb();
        },
      });
      void run({
        root: freshRoot(),
        argv: ['sh', '-c', `echo started; sleep 1000; : ${marker}`],
        env: ['PATH=/bin'],
        cwd: '/',
        uid,
        gid: uid,
        network: 'none',
        stdout: out,
        stateDir,
        onStart: (p) => {
          pid = p;
          ready();
        },
      }).catch(() => {});
    });
    await started;
    // The launcher first, whatever the checks say, so that no run is left behind. (Its sh may also
    // show a child of its own with the marker, forked for sleep and not yet exec'd.)
    const launcher = Number(/^PPid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    const before = processesWith(marker);
    process.kill(launcher, 'SIGKILL');
    assert.ok(before.includes(pid), 'the command is the launcher child itself');
    assert.ok(await until(() => processesWith(marker).length === 0), `left: ${processesWith(marker)}`);
  });
}

test('SIGKILL of the Node process leaves no process, no mount; the next run works and cleans up', async () => {
  const marker = `sigkill-marker-${process.pid}`;
  const root = freshRoot();
  const script = join(tmp, 'victim.mjs');
  writeFileSync(
    script,
    `
    import { run } from ${JSON.stringify(join(here, '..', 'src', 'index.js'))};
    await run({ root: ${JSON.stringify(root)}, argv: ['sh', '-c', 'echo started; sleep 1000; : ${marker}'],
      env: ['PATH=/bin'], cwd: '/', uid: 0, gid: 0, network: 'none', stdout: process.stdout,
      stateDir: ${JSON.stringify(stateDir)}, limits: { pidsLimit: 50 } });
  `,
  );
  const victim = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  victim.stdout.on('data', (b) => {
    out += b;
  });
  assert.ok(await until(() => out.includes('started'), 20000), 'the victim never started');
  const [victimInit] = processesWith(marker);
  assert.ok(victimInit);
  const cgroups = runCgroupsOf(victimInit).filter((d) => existsSync(d));
  assert.ok(cgroups.length > 0, 'the victim run has a cgroup');
  assert.ok(hostMountsMention(root.upperdir) === false, 'the overlay is visible on the host');
  victim.kill('SIGKILL');
  await new Promise((r) => victim.on('close', r));
  assert.ok(await until(() => processesWith(marker).length === 0), `left: ${processesWith(marker)}`);
  assert.not.ok(hostMountsMention(root.upperdir));
  // The next run works, and sweeps the dead run's state directory and cgroups.
  const r = await sh('echo again', { stateDir: join(stateDir, '..', 'state-after-kill') });
  assert.is(r.out, 'again\n');
  const r2 = await sh(['true']);
  assert.is(r2.code, 0);
  for (const d of cgroups) assert.not.ok(existsSync(d), `the dead run's ${d} is swept`);
  void listTree;
});

test.run();
