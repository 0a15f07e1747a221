// cgroup v1: one directory per controller hierarchy (/sys/fs/cgroup/{pids,cpu,cpuacct,memory,...}).
// pids and cpuacct are always joined (they find every process and measure CPU time), devices too
// (the device allowlist, see devices.ts), freezer for containers (`freezable`: commit freezes
// them); cpu and memory only when a limit asks for them, since each hierarchy costs a mkdir/rmdir
// per run.
import { mkdirSync, readdirSync, existsSync } from 'node:fs';
import type { Limits } from '../types.js';
import { allowedDevices } from './devices.js';
import type { CgroupDriver, RunCgroup } from './types.js';
import { killAndRemove, readKeyed, readText, write } from './fsutil.js';

export function v1Driver(root = '/sys/fs/cgroup', parent = 'tsbuild'): CgroupDriver {
  const dir = (ctrl: string, id?: string) => `${root}/${ctrl}/${parent}${id ? '/' + id : ''}`;
  return {
    version: 1,
    root,
    create(id: string, limits: Limits, opts: { freezable?: boolean } = {}): RunCgroup {
      const ctrls = ['pids', 'cpuacct', 'devices'];
      if (opts.freezable) ctrls.push('freezer');
      if (limits.cpuQuota !== undefined || limits.cpuPeriod !== undefined) ctrls.push('cpu');
      if (limits.memoryBytes !== undefined) ctrls.push('memory');
      const made: string[] = [];
      const cg: RunCgroup = {
        procsFiles: [],
        mounts: [],
        cpuNanos: () => {
          const v = readText(`${dir('cpuacct', id)}/cpuacct.usage`);
          return v === undefined ? undefined : Number(v.trim());
        },
        oomKilled: () =>
          ctrls.includes('memory') && (readKeyed(`${dir('memory', id)}/memory.oom_control`, 'oom_kill') ?? 0) > 0,
        destroy: async () => {
          // pids first: killing there empties the others too.
          for (const d of made) await killAndRemove(d);
        },
      };
      try {
        for (const c of ctrls) {
          if (!existsSync(`${root}/${c}`)) {
            if (c === 'pids' || c === 'cpuacct') continue; // tracking only: optional
            if (c === 'devices') {
              throw new Error(
                `sandbox: the cgroup v1 devices controller is not mounted at ${root}/devices: ` +
                  'without it nothing limits which device nodes a sandbox opens',
              );
            }
            throw new Error(`sandbox: the cgroup v1 controller '${c}' is not mounted at ${root}/${c}`);
          }
          mkdirSync(dir(c), { recursive: true });
          mkdirSync(dir(c, id));
          made.push(dir(c, id));
          // `tasks`, not cgroup.procs: the launcher (one thread) joins without a global lock (launcher.c).
          cg.procsFiles.push(`${dir(c, id)}/tasks`);
          cg.mounts.push({ name: c, dir: dir(c, id) });
        }
        // Deny everything, then allow the list: the new cgroup starts with its parent's "a *:* rwm".
        write(`${dir('devices', id)}/devices.deny`, 'a');
        for (const rule of allowedDevices) write(`${dir('devices', id)}/devices.allow`, rule);
        if (limits.pidsLimit !== undefined && made.includes(dir('pids', id)))
          write(`${dir('pids', id)}/pids.max`, limits.pidsLimit);
        if (ctrls.includes('cpu')) {
          write(`${dir('cpu', id)}/cpu.cfs_period_us`, limits.cpuPeriod ?? 100000);
          if (limits.cpuQuota !== undefined) write(`${dir('cpu', id)}/cpu.cfs_quota_us`, limits.cpuQuota);
        }
        if (ctrls.includes('memory')) {
          const m = dir('memory', id);
          write(`${m}/memory.limit_in_bytes`, limits.memoryBytes!);
          // No swap either, or a hog swaps instead of being killed (must follow limit_in_bytes).
          if (existsSync(`${m}/memory.memsw.limit_in_bytes`))
            write(`${m}/memory.memsw.limit_in_bytes`, limits.memoryBytes!);
        }
      } catch (e) {
        void cg.destroy();
        throw e;
      }
      return cg;
    },
    async cleanupStale(isStale) {
      for (const c of ['pids', 'cpuacct', 'devices', 'freezer', 'cpu', 'memory']) {
        let ids: string[] = [];
        try {
          ids = readdirSync(dir(c));
        } catch {
          continue;
        }
        for (const id of ids) {
          if (!existsSync(`${dir(c, id)}/cgroup.procs`) || !isStale(id)) continue;
          await killAndRemove(dir(c, id)).catch(() => {});
        }
      }
    },
  };
}
