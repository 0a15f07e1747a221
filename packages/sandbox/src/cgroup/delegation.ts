// Rootless: the cgroup v2 subtree the system delegated to this user, if any. systemd's contract
// (`Delegate=yes`, `systemd-run --user --scope -p Delegate=yes`): the process's own cgroup, the
// `0::/PATH` line of /proc/self/cgroup, is a directory the user may write, with its cgroup.procs
// and cgroup.subtree_control, and its cgroup.controllers lists the controllers handed down. Runs
// then get a child cgroup each beneath it. Anything less (a hybrid host whose cgroup2 carries no
// controllers for the user, a session scope owned by root) is no delegation: runs have no limits.
import { accessSync, constants, readFileSync } from 'node:fs';
import { INIT_LEAF } from './v2.js';

/** What the plan is made from: the process's own files, or a table row in a test. */
export interface DelegationProbe {
  /** Text of /proc/self/cgroup. */
  cgroup: string;
  /** Text of /proc/self/mountinfo. */
  mountinfo: string;
  /** The contents of a file, undefined when it cannot be read. */
  read(path: string): string | undefined;
  writable(path: string): boolean;
}

export type DelegationPlan =
  | {
      delegated: true;
      /** Where the cgroup2 hierarchy is mounted. */
      mount: string;
      /** The delegated cgroup's directory (under `mount`). */
      dir: string;
      /** Its cgroup.controllers: what its children can be given. */
      controllers: string[];
    }
  | { delegated: false; reason: string };

/** The limits each controller applies, as `tsbuild run` and `build` name them. */
export const limitFlags: Readonly<Record<string, string>> = {
  cpu: '--cpus',
  memory: '--memory',
  pids: '--pids-limit',
};

/** The mountpoint of the cgroup2 hierarchy whose root is mounted (mountinfo field 4 is "/"). */
export function cgroup2Mount(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post?.startsWith('cgroup2 ')) continue;
    const f = pre.split(' ');
    // A mount of a subtree (a cgroup namespace's view) cannot be matched against /proc/self/cgroup paths.
    if (f[3] === '/') return f[4].replace(/\\040/g, ' ');
  }
  return undefined;
}

export function planDelegation(p: DelegationProbe): DelegationPlan {
  const own = /^0::(\/.*)$/m.exec(p.cgroup)?.[1];
  // A process in the leaf an earlier tsbuild moved the cgroup's processes to (v2.ts INIT_LEAF: the
  // user's shell, so every later tsbuild) still has the leaf's parent delegated: taking the leaf for
  // the delegation would nest runs one level deeper each time, out of sight of the earlier ones.
  const path = own?.endsWith(`/${INIT_LEAF}`) ? own.slice(0, -INIT_LEAF.length - 1) || '/' : own;
  if (path === undefined) return { delegated: false, reason: 'this process is in no cgroup v2 hierarchy' };
  const mount = cgroup2Mount(p.mountinfo);
  if (!mount) return { delegated: false, reason: 'no cgroup2 filesystem is mounted' };
  const dir = path === '/' ? mount : mount + path;
  // The root cgroup is the host's: never a user's, even where its files were made writable.
  if (path === '/') return { delegated: false, reason: `your cgroup is the root of ${mount}, not delegated to you` };
  const files = [dir, `${dir}/cgroup.procs`, `${dir}/cgroup.subtree_control`];
  const closed = files.filter((f) => !p.writable(f));
  if (closed.length > 0) {
    const names = closed.map((f) => f.slice(dir.length) || '.').join(', ');
    return { delegated: false, reason: `your cgroup ${dir} is not delegated to you (${names} not writable)` };
  }
  const controllers = (p.read(`${dir}/cgroup.controllers`) ?? '').trim().split(/\s+/).filter(Boolean);
  return { delegated: true, mount, dir, controllers };
}

function canWrite(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** This process's plan, from its own /proc files. */
export function ownDelegation(): DelegationPlan {
  return planDelegation({
    cgroup: readOrUndefined('/proc/self/cgroup') ?? '',
    mountinfo: readOrUndefined('/proc/self/mountinfo') ?? '',
    read: readOrUndefined,
    writable: canWrite,
  });
}
