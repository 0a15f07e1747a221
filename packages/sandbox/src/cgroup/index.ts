// Picks the cgroup driver for this host: a cgroup2 filesystem at /sys/fs/cgroup means unified
// mode; otherwise the v1 controller hierarchies (a hybrid host's /sys/fs/cgroup/unified carries no
// controllers, so it is of no use for limits).
import { existsSync } from 'node:fs';
import type { CgroupDriver } from './types.js';
import { v1Driver } from './v1.js';
import { v2Driver } from './v2.js';
import { rootless } from '../userns.js';
import { ownDelegation, type DelegationPlan } from './delegation.js';

export type { CgroupDriver, RunCgroup, Delegation } from './types.js';
export { limitFlags, planDelegation, type DelegationPlan, type DelegationProbe } from './delegation.js';

let plan: DelegationPlan | undefined;

/** Rootless: the cgroup v2 subtree delegated to this user, or why there is none (see delegation.ts). */
export function delegationPlan(): DelegationPlan {
  return (plan ??= ownDelegation());
}

let driver: CgroupDriver | null | undefined;

export function cgroupDriver(): CgroupDriver | null {
  if (driver !== undefined) return driver;
  // Rootless: only a subtree the system delegated to the user; the rest belongs to the host's root.
  if (rootless()) {
    const p = delegationPlan();
    return (driver = p.delegated ? v2Driver(p.dir, 'tsbuild', { mount: p.mount, delegated: true }) : null);
  }
  // The v2 driver on another cgroup2 mount: for testing the v2 path (device program included) on a
  // hybrid host, whose controller-less /sys/fs/cgroup/unified serves runs without limits.
  const v2root = process.env.TSBUILD_CGROUP2_ROOT;
  if (v2root) driver = v2Driver(v2root);
  else if (existsSync('/sys/fs/cgroup/cgroup.controllers')) driver = v2Driver();
  else if (existsSync('/sys/fs/cgroup/pids/cgroup.procs') || existsSync('/sys/fs/cgroup/memory/cgroup.procs'))
    driver = v1Driver();
  else driver = null;
  return driver;
}
