// cgroup v2 (unified): one directory per run under <root>/tsbuild. Processes may live only in
// leaves, and a controller is usable in a child only once the parent lists it in
// cgroup.subtree_control — hence enabling cpu/memory/pids at the root and in tsbuild/. The device
// allowlist (devices.ts) is a BPF program the launcher attaches to the run's directory.
import { mkdirSync, readdirSync, existsSync } from 'node:fs';
import type { Limits } from '../types.js';
import type { CgroupDriver, RunCgroup } from './types.js';
import { killAndRemove, readKeyed, readText, write } from './fsutil.js';

function enableControllers(dir: string, wanted: string[]): void {
  const available = (readText(`${dir}/cgroup.controllers`) ?? '').trim().split(/\s+/);
  const enabled = (readText(`${dir}/cgroup.subtree_control`) ?? '').trim().split(/\s+/);
  const add = wanted.filter((c) => available.includes(c) && !enabled.includes(c));
  if (add.length > 0) write(`${dir}/cgroup.subtree_control`, add.map((c) => `+${c}`).join(' '));
}

export function v2Driver(root = '/sys/fs/cgroup', parent = 'tsbuild'): CgroupDriver {
  const base = `${root}/${parent}`;
  let prepared = false;
  return {
    version: 2,
    root,
    create(id: string, limits: Limits): RunCgroup {
      if (!prepared) {
        enableControllers(root, ['cpu', 'memory', 'pids']);
        mkdirSync(base, { recursive: true });
        enableControllers(base, ['cpu', 'memory', 'pids']);
        prepared = true;
      }
      const dir = `${base}/${id}`;
      mkdirSync(dir);
      const cg: RunCgroup = {
        procsFiles: [`${dir}/cgroup.procs`],
        mounts: [{ name: '', dir }],
        deviceCgroup: dir,
        cpuNanos: () => {
          const us = readKeyed(`${dir}/cpu.stat`, 'usage_usec');
          return us === undefined ? undefined : us * 1000;
        },
        oomKilled: () => (readKeyed(`${dir}/memory.events`, 'oom_kill') ?? 0) > 0,
        destroy: () => killAndRemove(dir, true),
      };
      try {
        if (limits.pidsLimit !== undefined) write(`${dir}/pids.max`, limits.pidsLimit);
        if (limits.cpuQuota !== undefined || limits.cpuPeriod !== undefined)
          write(`${dir}/cpu.max`, `${limits.cpuQuota ?? 'max'} ${limits.cpuPeriod ?? 100000}`);
        if (limits.memoryBytes !== undefined) {
          write(`${dir}/memory.max`, limits.memoryBytes);
          if (existsSync(`${dir}/memory.swap.max`)) write(`${dir}/memory.swap.max`, 0);
        }
      } catch (e) {
        void cg.destroy();
        throw e;
      }
      return cg;
    },
    async cleanupStale(isStale) {
      let ids: string[] = [];
      try {
        ids = readdirSync(base);
      } catch {
        return;
      }
      for (const id of ids) {
        if (!existsSync(`${base}/${id}/cgroup.procs`) || !isStale(id)) continue;
        await killAndRemove(`${base}/${id}`, true).catch(() => {});
      }
    },
  };
}
