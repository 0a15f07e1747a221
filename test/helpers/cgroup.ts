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

function gone(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Whether any process is left anywhere in the subtree (cgroup.events: "populated 0|1"). */
function populated(dir: string): boolean {
  try {
    return /^populated 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8'));
  } catch (e) {
    if (gone(e)) return false;
    throw e;
  }
}

/**
 * Kills what is left in the subtree (cgroup.kill takes every process below at once, a detached
 * container's supervisor too, which may be removing its own run cgroup meanwhile) and removes it,
 * deepest first.
 */
export async function removeCgroup(cg: DelegatedCgroup | undefined): Promise<void> {
  if (!cg || !existsSync(cg.dir)) return;
  for (let i = 0; i < 1000 && populated(cg.dir); i++) {
    writeFileSync(join(cg.dir, 'cgroup.kill'), '1');
    await new Promise((r) => setTimeout(r, 10));
  }
  const remove = (dir: string): void => {
    let subdirs: string[] = [];
    try {
      subdirs = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch (e) {
      if (gone(e)) return;
      throw e;
    }
    for (const d of subdirs) remove(join(dir, d));
    try {
      rmdirSync(dir);
    } catch (e) {
      if (!gone(e)) throw e;
    }
  };
  remove(cg.dir);
}
