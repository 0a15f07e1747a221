// cgroup v2 (unified): one directory per run under <root>/tsbuild. Processes may live only in
// leaves, and a controller is usable in a child only once the parent lists it in
// cgroup.subtree_control — hence enabling cpu/memory/pids at the root and in tsbuild/. The device
// allowlist (devices.ts) is a BPF program the launcher attaches to the run's directory.
//
// Delegated (rootless, see delegation.ts): root is the user's own cgroup. Nothing is enabled until a
// limit needs it; then the user's processes move into the leaf <root>/tsbuild-init first, as crun
// and podman do, since a cgroup with processes of its own cannot enable controllers for children.
// No device program: attaching one needs CAP_SYS_ADMIN on the host, and rootless /dev holds binds
// of the host's own nodes, which the user namespace keeps from being made anew.
import { mkdirSync, readdirSync, existsSync } from 'node:fs';
import type { Limits } from '../types.js';
import type { CgroupDriver, Delegation, RunCgroup } from './types.js';
import { killAndRemove, readKeyed, readText, write } from './fsutil.js';

const words = (text: string | undefined) => (text ?? '').trim().split(/\s+/).filter(Boolean);

function enableControllers(dir: string, wanted: string[]): void {
  const available = words(readText(`${dir}/cgroup.controllers`));
  const enabled = words(readText(`${dir}/cgroup.subtree_control`));
  const add = wanted.filter((c) => available.includes(c) && !enabled.includes(c));
  if (add.length > 0) write(`${dir}/cgroup.subtree_control`, add.map((c) => `+${c}`).join(' '));
}

/** The leaf a delegated cgroup's own processes move to before it enables controllers. */
export const INIT_LEAF = 'tsbuild-init';

function delegation(root: string, base: string): Delegation {
  return {
    dir: root,
    controllers: words(readText(`${root}/cgroup.controllers`)),
    enable(wanted) {
      try {
        const need = wanted.filter((c) => !words(readText(`${root}/cgroup.subtree_control`)).includes(c));
        if (need.length > 0) {
          const leaf = `${root}/${INIT_LEAF}`;
          mkdirSync(leaf, { recursive: true });
          for (const pid of words(readText(`${root}/cgroup.procs`))) {
            try {
              write(`${leaf}/cgroup.procs`, pid);
            } catch {
              /* gone meanwhile, or not this user's: the write below says so */
            }
          }
          write(`${root}/cgroup.subtree_control`, need.map((c) => `+${c}`).join(' '));
        }
        mkdirSync(base, { recursive: true });
        enableControllers(base, wanted);
        return undefined;
      } catch (e) {
        return (e as Error).message.replace(/^sandbox: /, '');
      }
    },
  };
}

export function v2Driver(
  root = '/sys/fs/cgroup',
  parent = 'tsbuild',
  opts: { mount?: string; delegated?: boolean } = {},
): CgroupDriver {
  const base = `${root}/${parent}`;
  let prepared = false;
  const delegated = opts.delegated ? delegation(root, base) : undefined;
  return {
    version: 2,
    root,
    mount: opts.mount ?? root,
    delegation: delegated,
    create(id: string, limits: Limits): RunCgroup {
      if (!prepared && !delegated) {
        enableControllers(root, ['cpu', 'memory', 'pids']);
        mkdirSync(base, { recursive: true });
        enableControllers(base, ['cpu', 'memory', 'pids']);
        prepared = true;
      }
      if (delegated) mkdirSync(base, { recursive: true });
      const dir = `${base}/${id}`;
      mkdirSync(dir);
      const cg: RunCgroup = {
        procsFiles: [`${dir}/cgroup.procs`],
        mounts: [{ name: '', dir }],
        deviceCgroup: delegated ? undefined : dir,
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
