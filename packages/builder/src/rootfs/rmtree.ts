// Removing a tree that a running container may still change (a volume: `volume rm -f`).
//
// A removal by path (fs.rm) lstats a name, sees a directory, then lists and unlinks "name/child":
// if the container swaps that directory for a symlink to a host directory in between (renameat2
// RENAME_EXCHANGE), the host directory is emptied (the CVE-2024-23652 pattern). Here every
// directory is opened once, with O_NOFOLLOW|O_DIRECTORY, and everything below is reached through
// that descriptor (/proc/self/fd/N/NAME: the kernel starts from the open directory, whatever its
// path has become since), and the last component of a path is never followed (lstat, unlink,
// rmdir). A name that changes kind mid-way fails with EISDIR/ENOTDIR/ELOOP and is looked at again.
import { closeSync, constants as fsc, lstatSync, openSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';

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

function openDir(path: string): number | undefined {
  try {
    return openSync(path, DIR_FLAGS);
  } catch (e) {
    if (RACED.has(code(e) ?? '')) return undefined;
    throw e;
  }
}

function emptyDir(fd: number, shown: string): void {
  const here = `/proc/self/fd/${fd}`;
  for (let round = 0; ; round++) {
    const names = readdirSync(here);
    if (names.length === 0) return;
    if (round >= MAX_ROUNDS) throw keepsChanging(shown);
    for (const name of names) removeEntry(`${here}/${name}`, `${shown}/${name}`);
  }
}

function removeEntry(p: string, shown: string): void {
  try {
    if (!lstatSync(p).isDirectory()) { unlinkSync(p); return; }
  } catch (e) {
    if (RACED.has(code(e) ?? '')) return;
    throw e;
  }
  const sub = openDir(p);
  if (sub === undefined) return;
  try {
    emptyDir(sub, shown);
  } finally {
    closeSync(sub);
  }
  try {
    rmdirSync(p);
  } catch (e) {
    if (!RACED.has(code(e) ?? '')) throw e;
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
