// cgroup limits bite, and the cgroup is gone afterwards.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { throttledCounters } from '@tsbuild/testkit';
import { runCgroupsNamedFor, runCgroupsOf, sh, type Result } from './helpers.js';
import { checkHost, type Limits } from '../src/index.js';

const cgroupVersion = checkHost().cgroupVersion;

test('a fork bomb stops at the pids limit', async () => {
  // The inner shell forks until it fails (ash gives up at the first failed fork); the outer one
  // counts with a glob, a builtin, because at the limit not even `ls` could fork.
  const r = await sh("sh -c 'while :; do sleep 30 & done'; set -- /proc/[0-9]*; echo $#", {
    limits: { pidsLimit: 20 },
  });
  const procs = Number(r.out.trim());
  assert.ok(procs > 0 && procs <= 20, `saw ${procs} processes`);
  assert.match(r.err, /fork/i);
  assert.is(r.code, 0, r.err);
});

test('a memory hog is killed and reported as OOM', async () => {
  const r = await sh(['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=100M', 'count=1'], {
    limits: { memoryBytes: 32 * 1024 * 1024 },
  });
  assert.is(r.oomKilled, true);
  assert.is(r.code, 137);
  assert.is(r.signal, 'SIGKILL');
});

test('a run within its memory limit is not reported as OOM', async () => {
  const r = await sh(['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=1M', 'count=1'], {
    limits: { memoryBytes: 64 * 1024 * 1024 },
  });
  assert.is(r.oomKilled, false);
  assert.is(r.code, 0);
});

/**
 * Runs `script`, which prints "up" once ready and then waits for its stdin to end; calls `during`
 * with the run's cgroup directories (as the host sees them) while it runs, then ends it.
 */
async function whileRunning<T>(
  script: string,
  limits: Limits,
  during: (cgroups: string[]) => Promise<T> | T,
): Promise<{ r: Result; seen: T }> {
  const stdin = new PassThrough();
  let pid = 0;
  let seen: Promise<T> | undefined;
  let out = '';
  // Its pid is reported once it has exec'd, its output may come first: both are waited for.
  const ready = () => {
    if (!seen && pid && out.includes('up')) {
      seen = Promise.resolve()
        .then(() => during(runCgroupsOf(pid)))
        .finally(() => stdin.end());
    }
  };
  const stdout = new Writable({
    write(c, _e, cb) {
      out += c;
      ready();
      cb();
    },
  });
  const r = await sh(script, {
    limits,
    stdin,
    stdout,
    onStart: (p) => {
      pid = p;
      ready();
    },
  });
  assert.ok(seen, `the run never said it was up: ${r.err}`);
  return { r, seen: await seen };
}

test('a CPU quota of 20% holds: the loop is throttled, and gets its quota per period, no more', async () => {
  // Judged by the cgroup's counters, not by wall time: how many periods the run was active in,
  // in how many it hit the quota, and the CPU time it got. A loaded machine only slows the count.
  const quotaNs = 20_000_000;
  const loop = 'sh -c "while :; do :; done" & echo up; read x; kill $!';
  const { r, seen } = await whileRunning(loop, { cpuQuota: quotaNs / 1000, cpuPeriod: 100_000 }, throttledCounters);
  assert.is(r.code, 0, r.err);
  const { usageNs, periods, throttled } = seen;
  // At most the quota in each period it ran in (a tick of overrun is paid back the next period),
  // and at least most of it in each period it was throttled in.
  assert.ok(usageNs <= periods * quotaNs * 1.25, `${usageNs / 1e6} ms of CPU in ${periods} periods of 20 ms quota`);
  assert.ok(usageNs >= throttled * quotaNs * 0.75, `${usageNs / 1e6} ms of CPU, throttled in ${throttled} periods`);
});

test('the cgroups of a run exist while it runs, and are gone after it', async () => {
  const limits = { pidsLimit: 20, memoryBytes: 64 * 1024 * 1024, cpuQuota: 50_000, cpuPeriod: 100_000 };
  const live = (cgroups: string[]) => cgroups.filter((d) => existsSync(join(d, 'cgroup.procs')));
  const { r, seen: during } = await whileRunning('echo up; read x; exit 0', limits, live);
  assert.is(r.code, 0, r.err);
  // v2: one; v1: one per hierarchy, at least those the limits need.
  const want = (cgroupVersion === 2 ? [''] : ['pids/', 'cpu/', 'memory/']).map((c) => `/sys/fs/cgroup/${c}tsbuild/`);
  for (const w of want)
    assert.ok(
      during.some((d) => d.startsWith(w)),
      `a cgroup under ${w} while it ran: ${during}`,
    );
  for (const d of during) assert.not.ok(existsSync(d), `${d} is left behind`);
});

// The launcher joins each cgroup before it forks (on v1 through `tasks`, a thread at a time): the
// command and what it forks are in every one of them, as whole processes (cgroup.procs lists them).
test('the command and the processes it forks are in every cgroup of the run (v1: devices too)', async () => {
  const script = 'sleep 100 & echo up; read x; kill $!';
  const { r, seen } = await whileRunning(script, { pidsLimit: 50 }, (cgroups) => {
    // The launcher, the shell and its sleep, as the cgroup lists its processes.
    const pids = readFileSync(`${cgroups[0]}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
    return { cgroups, pids, each: pids.map((p) => runCgroupsOf(p)) };
  });
  assert.is(r.code, 0, r.err);
  assert.is(seen.pids.length, 3, `the launcher, the shell and its child: ${seen.pids}`);
  const want = cgroupVersion === 2 ? [''] : ['pids/', 'cpuacct/', 'devices/'];
  for (const w of want)
    assert.ok(
      seen.cgroups.some((d) => d.startsWith(`/sys/fs/cgroup/${w}tsbuild/`)),
      `in a cgroup under ${w}: ${seen.cgroups}`,
    );
  for (const [i, p] of seen.pids.entries()) assert.equal(seen.each[i], seen.cgroups, `pid ${p}'s cgroups`);
});

test('no run cgroup of this process is left behind', () => {
  assert.ok(cgroupVersion, 'cgroups are mounted (the runs above used them)');
  assert.equal(runCgroupsNamedFor(process.pid), []);
});

test.run();
