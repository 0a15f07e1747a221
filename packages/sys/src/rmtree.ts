// Removing a tree that a running container may still change (a volume: `volume rm -f`).
//
// A removal by path (fs.rm) lstats a name, sees a directory, then lists and unlinks "name/child":
// if the container swaps that directory for a symlink to a host directory in between (renameat2
// RENAME_EXCHANGE), the host directory is emptied (the CVE-2024-23652 pattern). Here every
// directory is opened once, with O_NOFOLLOW|O_DIRECTORY, and everything below is reached through
// that descriptor (/proc/self/fd/N/NAME: the kernel starts from the open directory, whatever its
// path has become since), and the last component of a path is never followed (lstat, unlink,
// rmdir). A name that changes kind mid-way fails with EISDIR/ENOTDIR/ELOOP and is looked at again.
// A directory without u+rwx (a 0555 one from a tar) is given it before it is emptied: without
// CAP_DAC_OVERRIDE (root in a container that dropped it) nothing in it could be listed or removed.
import {
  chmodSync,
  closeSync,
  constants as fsc,
  fchmodSync,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  rmdirSync,
  unlinkSync,
} from 'node:fs';

const DIR_FLAGS = fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW;
/** Rounds over one directory before giving up on a tree that keeps changing under the removal. */
const MAX_ROUNDS = 1000;
/** Codes that mean "the name changed under us": look again in the next round. */
const RACED = new Set(['ENOENT', 'EISDIR', 'ENOTDIR', 'ELOOP', 'ENOTEMPTY', 'EEXIST', 'EPERM']);

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

function keepsChanging(path: string): Error {
  return new Error(`${path} keeps changing while it is removed (a running container may be using it)`);
}

/** Linux's O_PATH (node's fs.constants lacks it): opens a directory its owner may not read. */
const O_PATH = 0o10000000;

/** Adds u+rwx to the open directory `fd` (it is about to be removed); a refusal is left to the removal. */
function ownerRwx(fd: number): void {
  const mode = fstatSync(fd).mode & 0o7777;
  if ((mode & 0o700) === 0o700) return;
  try {
    fchmodSync(fd, mode | 0o700);
  } catch {
    /* not ours (EPERM): the removal says what fails */
  }
}

/**
 * A directory its owner may not read (0111, 0000): chmod through the /proc link of an O_PATH fd,
 * which is the opened inode itself (no symlink is followed); true if it was done.
 */
function unlockDir(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, O_PATH | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
  } catch {
    return false;
  }
  try {
    chmodSync(`/proc/self/fd/${fd}`, (fstatSync(fd).mode & 0o7777) | 0o700);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

function openDir(path: string, unlocked = false): number | undefined {
  let fd: number;
  try {
    fd = openSync(path, DIR_FLAGS);
  } catch (e) {
    if (!unlocked && code(e) === 'EACCES' && unlockDir(path)) return openDir(path, true);
    if (RACED.has(code(e) ?? '')) return undefined;
    throw e;
  }
  ownerRwx(fd);
  return fd;
}

/**
 * Directory fds kept open on the way down. A tree may be far deeper than the call stack or the fd
 * limit allow (a container can mkdir and cd in a loop): the walk is a loop, and above its window it
 * opens its way down again from the nearest directory it holds, one name at a time.
 */
const WINDOW = 1024;

/**
 * Empties the directory open as `top`. `names` is the path from it to the directory being emptied,
 * `fds` the open fds of some of the directories on that path (by depth; 0 is `top`, the caller's).
 * Every open and removal is of one name in a directory held open, never followed if a symlink.
 */
function emptyDir(top: number, shown: string): void {
  const names: string[] = [];
  const fds = new Map<number, number>([[0, top]]);
  const drop = (d: number) => {
    const fd = fds.get(d);
    if (d > 0 && fd !== undefined) closeSync(fd);
    fds.delete(d);
  };
  const hold = (d: number, fd: number) => {
    fds.set(d, fd);
    if (d - WINDOW > 0) drop(d - WINDOW);
  };
  /** The fd of the directory at depth d, opened from the deepest one held above it; undefined if it moved. */
  const reach = (d: number): number | undefined => {
    let k = d;
    while (!fds.has(k)) k--;
    for (let i = k + 1; i <= d; i++) {
      const fd = openDir(`/proc/self/fd/${fds.get(i - 1)!}/${names[i - 1]}`);
      if (fd === undefined) return undefined;
      hold(i, fd);
    }
    return fds.get(d);
  };
  // pending[d]: the names of one listing of the directory at depth d not handled yet (a directory
  // is listed again only once they are, so a wide one is not read once per subdirectory).
  const pending: string[][] = [];
  try {
    for (let stuck = 0; ; stuck++) {
      if (stuck > MAX_ROUNDS) throw keepsChanging(shown);
      const depth = names.length;
      const fd = reach(depth);
      if (fd === undefined) {
        // A directory on the way down was renamed or replaced: start again from the top.
        for (const d of [...fds.keys()]) drop(d);
        fds.set(0, top);
        names.length = 0;
        pending.length = 0;
        continue;
      }
      const here = `/proc/self/fd/${fd}`;
      if (!pending[depth]?.length) pending[depth] = readdirSync(here);
      const todo = pending[depth];
      if (todo.length === 0) {
        if (depth === 0) return;
        drop(depth);
        pending.length = depth;
        const name = names.pop()!;
        const parent = reach(depth - 1);
        if (parent === undefined) continue;
        try {
          rmdirSync(`/proc/self/fd/${parent}/${name}`);
          stuck = -1;
        } catch (e) {
          if (!RACED.has(code(e) ?? '')) throw e;
        }
        continue;
      }
      while (todo.length) {
        const name = todo.pop()!;
        const p = `${here}/${name}`;
        try {
          if (!lstatSync(p).isDirectory()) {
            unlinkSync(p);
            stuck = -1;
            continue;
          }
        } catch (e) {
          if (RACED.has(code(e) ?? '')) continue;
          throw e;
        }
        const sub = openDir(p);
        if (sub === undefined) continue;
        names.push(name);
        hold(depth + 1, sub);
        pending[depth + 1] = [];
        stuck = -1;
        break;
      }
    }
  } finally {
    for (const d of fds.keys()) drop(d);
  }
}

/**
 * Removes `path` and everything under it without following a symlink anywhere below `path`
 * (`path` itself is not followed either: a symlink there is removed, not its target). The parents
 * of `path` must be the caller's own. Missing is fine.
 */
export function removeTreeBeneath(path: string): void {
  for (let round = 0; ; round++) {
    let st;
    try {
      st = lstatSync(path);
    } catch (e) {
      if (code(e) === 'ENOENT') return;
      throw e;
    }
    if (!st.isDirectory()) {
      unlinkSync(path);
      return;
    }
    const fd = openDir(path);
    if (fd !== undefined) {
      try {
        emptyDir(fd, path);
      } finally {
        closeSync(fd);
      }
      try {
        rmdirSync(path);
        return;
      } catch (e) {
        if (!RACED.has(code(e) ?? '')) throw e;
      }
    }
    if (round >= MAX_ROUNDS) throw keepsChanging(path);
  }
}
