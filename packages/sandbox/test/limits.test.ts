// cgroup limits bite, and the cgroup is gone afterwards.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync } from 'node:fs';
import { sh } from './helpers.js';
import { checkHost } from '../src/index.js';

const cgroupVersion = checkHost().cgroupVersion;

test('a fork bomb stops at the pids limit', async () => {
  // The inner shell forks until it fails (ash gives up at the first failed fork); the outer one
  // counts with a glob, a builtin, because at the limit not even `ls` could fork.
  const r = await sh('sh -c \'while :; do sleep 30 & done\'; set -- /proc/[0-9]*; echo $#', {
    limits: { pidsLimit: 20 },
  });
  const procs = Number(r.out.trim());
  assert.ok(procs > 0 && procs <= 20, `saw ${procs} processes`);
  assert.match(r.err, /fork/i);
  assert.is(r.code, 0, r.err);
});

test('a memory hog is killed and reported as OOM', async () => {
  const r = await sh(['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=100M', 'count=1'], { limits: { memoryBytes: 32 * 1024 * 1024 } });
  assert.is(r.oomKilled, true);
  assert.is(r.code, 137);
  assert.is(r.signal, 'SIGKILL');
});

test('a run within its memory limit is not reported as OOM', async () => {
  const r = await sh(['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=1M', 'count=1'], { limits: { memoryBytes: 64 * 1024 * 1024 } });
  assert.is(r.oomKilled, false);
  assert.is(r.code, 0);
});

test('a CPU quota of 20% holds within 5 points', async () => {
  // CPU time is what the cgroup accounted; the denominator is the run's wall time, which includes
  // a few idle ms of setup (they only pull the ratio down a little).
  const r = await sh('sh -c "while :; do :; done" & sleep 2; kill $!', { limits: { cpuQuota: 20000, cpuPeriod: 100000 } });
  assert.is(r.code, 0, r.err);
  assert.ok(r.usage?.cpuNanos !== undefined, 'no CPU accounting');
  const pct = (r.usage!.cpuNanos! / 1e6 / r.usage!.wallMs) * 100;
  assert.ok(pct >= 15 && pct <= 25, `used ${pct.toFixed(1)}% of a CPU`);
});

test('no run cgroup of this process is left behind', () => {
  const dirs = cgroupVersion === 2 ? ['/sys/fs/cgroup/tsbuild'] : ['pids', 'cpu', 'cpuacct', 'memory'].map((c) => `/sys/fs/cgroup/${c}/tsbuild`);
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    const mine = readdirSync(d).filter((e) => e.startsWith(`${process.pid}-`));
    assert.equal(mine, [], d);
  }
});

test.run();
