// A run's cgroups as the host sees them, and the CPU bandwidth counters in them: for tests that
// show a cgroup existed while a run ran, and that a CPU quota bites, by counters, not wall time.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The host directories of the cgroups under tsbuild/ that process `pid` is in (v1: one per hierarchy). */
export function runCgroupsOf(pid: number): string[] {
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  const dirs: string[] = [];
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m || !m[2].includes('/tsbuild/')) continue;
    // v2: the unified line ("0::/path"); v1: one line per hierarchy ("4:memory:/path").
    if (v2 && m[1] === '') dirs.push(`/sys/fs/cgroup${m[2]}`);
    else if (!v2 && m[1] !== '' && !m[1].startsWith('name=')) dirs.push(`/sys/fs/cgroup/${m[1]}${m[2]}`);
  }
  return dirs.sort();
}

export interface CpuCounters {
  /** Periods in which the cgroup had something to run. */
  periods: number;
  /** Periods in which it used up its quota and was stopped. */
  throttled: number;
  /** CPU time used by everything in it. */
  usageNs: number;
}

const read = (file: string): string | undefined => (existsSync(file) ? readFileSync(file, 'utf8') : undefined);
const num = (text: string | undefined, key: string): number =>
  Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(text ?? '')?.[1] ?? NaN);

/** The CPU bandwidth counters of a run, from its cgroups' own files (v1: cpu + cpuacct; v2: cpu.stat). */
export function cpuCounters(cgroups: string[]): CpuCounters {
  const stat = cgroups.map((d) => read(join(d, 'cpu.stat'))).find((t) => t !== undefined && /nr_periods/.test(t));
  const v1Usage = cgroups.map((d) => read(join(d, 'cpuacct.usage'))).find((t) => t !== undefined);
  const usageNs = v1Usage !== undefined ? Number(v1Usage.trim()) : num(stat, 'usage_usec') * 1000;
  return { periods: num(stat, 'nr_periods'), throttled: num(stat, 'nr_throttled'), usageNs };
}

/**
 * Waits until the cgroups were throttled `times` times (a busy loop under a quota), then returns
 * the counters; CPU time and throttled periods are read before the periods, so that
 * `usageNs <= periods x quota` and `usageNs >= throttled x quota` compare like with like. The
 * deadline only bounds a failure (a quota that never bites): a pass never waits for it.
 */
export async function throttledCounters(cgroups: string[], times = 20, deadlineMs = 120_000): Promise<CpuCounters> {
  const end = Date.now() + deadlineMs;
  while (cpuCounters(cgroups).throttled < times) {
    if (Date.now() > end) throw new Error(`not throttled ${times} times: ${JSON.stringify(cpuCounters(cgroups))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const first = cpuCounters(cgroups);
  const usageNs = cpuCounters(cgroups).usageNs;
  const last = cpuCounters(cgroups);
  return { throttled: first.throttled, usageNs, periods: last.periods };
}
