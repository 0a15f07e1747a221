// A cgroup v2 subtree delegated to a test user, as systemd's Delegate=yes hands one over: a new
// cgroup under the host's cgroup2 mount whose directory, cgroup.procs, cgroup.subtree_control and
// cgroup.threads belong to the user. Removed with everything below it (processes killed first), so
// the suite leaves nothing behind on the host.
import { chownSync, existsSync, readFileSync, readdirSync, rmdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Where the cgroup2 hierarchy is mounted (its root), or undefined. */
export function cgroup2Root(): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    const f = pre?.split(' ') ?? [];
    if (post?.startsWith('cgroup2 ') && f[3] === '/') return f[4];
  }
  return undefined;
}

export interface DelegatedCgroup {
  /** Absolute directory. */
  dir: string;
  /** Its path in the hierarchy, as /proc/PID/cgroup shows it ("/tsbuild-test-..."). */
  path: string;
}

/** Makes and delegates the cgroup; throws (the caller skips) where the hierarchy cannot be written. */
export function delegateCgroup(uid: number, gid: number): DelegatedCgroup {
  const root = cgroup2Root();
  if (!root) throw new Error('no cgroup2 hierarchy is mounted');
  const name = `tsbuild-test-${process.pid}-${randomBytes(3).toString('hex')}`;
  const dir = join(root, name);
  mkdirSync(dir);
  for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads']) chownSync(join(dir, f), uid, gid);
  return { dir, path: `/${name}` };
}

function procs(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Kills what is left in the subtree and removes it, deepest first. */
export async function removeCgroup(cg: DelegatedCgroup | undefined): Promise<void> {
  if (!cg || !existsSync(cg.dir)) return;
  const remove = async (dir: string): Promise<void> => {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) await remove(join(dir, e.name));
    for (let i = 0; i < 500; i++) {
      const left = procs(dir);
      if (left.length === 0) break;
      if (existsSync(join(dir, 'cgroup.kill'))) writeFileSync(join(dir, 'cgroup.kill'), '1');
      else
        for (const p of left) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      await new Promise((r) => setTimeout(r, 10));
    }
    rmdirSync(dir);
  };
  await remove(cg.dir);
}
