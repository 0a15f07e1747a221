// One cgroup per run: limits what the sandbox may use and finds every process it started.
import type { Limits } from '../types.js';

export interface RunCgroup {
  /** The files the launcher writes itself into before it forks anything: cgroup.procs, or v1's `tasks`. */
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

/** A cgroup v2 subtree delegated to the user (rootless): see delegation.ts. */
export interface Delegation {
  /** The delegated cgroup; runs get children of it. */
  dir: string;
  /** Its cgroup.controllers: the only ones its children can have. */
  controllers: string[];
  /**
   * Makes `wanted` (a subset of `controllers`) usable in runs' cgroups, moving this user's
   * processes out of `dir` first (cgroup v2 enables controllers only in a cgroup without processes
   * of its own). Returns why it could not, or undefined.
   */
  enable(wanted: string[]): string | undefined;
}

export interface CgroupDriver {
  version: 1 | 2;
  /** Where the hierarchy (v2) or the controller hierarchies (v1) are mounted. */
  root: string;
  /** cgroup v2: the mountpoint of the hierarchy, which /proc/PID/cgroup paths are relative to. */
  mount?: string;
  /** Set when `root` is a subtree delegated to the user (rootless); no device program is attached then. */
  delegation?: Delegation;
  /** `freezable`: the run can be frozen (see freeze.ts), e.g. while a container is committed. */
  create(id: string, limits: Limits, opts?: { freezable?: boolean }): RunCgroup;
  /** Removes run cgroups whose owner is gone. */
  cleanupStale(isStale: (id: string) => boolean): Promise<void>;
}
