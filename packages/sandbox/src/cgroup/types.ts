// One cgroup per run: limits what the sandbox may use and finds every process it started.
import type { Limits } from '../types.js';

export interface RunCgroup {
  /** cgroup.procs files the launcher joins before it forks anything. */
  procsFiles: string[];
  /**
   * The run's own cgroup directories, shown read-only inside at /sys/fs/cgroup/NAME: one per v1
   * controller the run joined, or on v2 its directory as /sys/fs/cgroup itself (NAME '').
   */
  mounts: { name: string; dir: string }[];
  /** cgroup v2: the directory the launcher attaches the device allowlist (a BPF program) to. */
  deviceCgroup?: string;
  /** CPU time used by everything in the run, in nanoseconds (undefined if not measured). */
  cpuNanos(): number | undefined;
  /** Whether the kernel's OOM killer killed a process of the run. */
  oomKilled(): boolean;
  /** Kills whatever is still inside, waits for it to go, removes the cgroup. */
  destroy(): Promise<void>;
}

export interface CgroupDriver {
  version: 1 | 2;
  /** Where the hierarchy (v2) or the controller hierarchies (v1) are mounted. */
  root: string;
  /** `freezable`: the run can be frozen (see freeze.ts), e.g. while a container is committed. */
  create(id: string, limits: Limits, opts?: { freezable?: boolean }): RunCgroup;
  /** Removes run cgroups whose owner is gone. */
  cleanupStale(isStale: (id: string) => boolean): Promise<void>;
}
