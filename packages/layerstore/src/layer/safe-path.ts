// Path rules for untrusted layer entries, and a target directory that is only ever written
// beneath: every directory is reached through an open fd of its parent, never through a symlink.
import { closeSync, lstatSync, mkdirSync, openSync } from 'node:fs';
import { at, DIR_FLAGS } from '@tsbuild/sys';
import { StoreError } from '../types.js';

export function hostile(entry: string, why: string): StoreError {
  return new StoreError('hostile-layer', `layer entry ${JSON.stringify(entry)}: ${why}`, entry);
}

/**
 * Normalise an entry name to a relative path ('' is the root).
 * Leading '/' and './' are stripped, as Docker does for absolute names; '.' components and
 * repeated slashes collapse. Any '..' component is refused, even one that would stay
 * inside the root: no legitimate layer writer emits them. NUL bytes are refused.
 */
export function cleanPath(name: string, entry = name): string {
  if (name.includes('\0')) throw hostile(entry, 'name contains a NUL byte');
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw hostile(entry, "'..' path component");
    parts.push(p);
  }
  return parts.join('/');
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i === -1 ? '' : rel.slice(0, i);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

/**
 * Open directory fds of the target, by relative path ('' is the root, opened by the caller).
 * Each is opened from its parent's fd with O_NOFOLLOW|O_DIRECTORY, so a symlink or a
 * non-directory anywhere on the way is refused, however the tree changed since.
 * Single-threaded use: an fd from get() stays valid until the next trim() or forget() of it
 * or a parent; unpack trims once per entry, so one entry can hold several.
 */
export class DirFds {
  private readonly fds = new Map<string, number>();
  /** Open fds kept for reuse (tar writers group entries by directory, so a few suffice). */
  static readonly KEEP = 64;

  constructor(readonly rootFd: number) {
    this.fds.set('', rootFd);
  }

  /** The fd of directory rel, creating missing components (0755); undefined if missing and not create. */
  get(rel: string, entry: string, create = true): number | undefined {
    const have = this.fds.get(rel);
    if (have !== undefined) {
      if (rel !== '') {
        this.fds.delete(rel);
        this.fds.set(rel, have);
      } // most recently used last
      return have;
    }
    const pfd = this.get(parentOf(rel), entry, create);
    if (pfd === undefined) return undefined;
    const name = baseOf(rel);
    let fd: number;
    try {
      fd = openSync(at(pfd, name), DIR_FLAGS);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        if (!create) return undefined;
        mkdirSync(at(pfd, name), 0o755);
        fd = openSync(at(pfd, name), DIR_FLAGS);
      } else if (code === 'ELOOP' || code === 'ENOTDIR') {
        const link = lstatSync(at(pfd, name)).isSymbolicLink();
        const what = link ? `the symlink ${JSON.stringify(rel)}` : `${JSON.stringify(rel)}, which is not a directory`;
        throw hostile(entry, `path goes through ${what}`);
      } else throw e;
    }
    this.fds.set(rel, fd);
    return fd;
  }

  /** The parent directory of rel, created if missing. */
  parent(rel: string, entry: string): number {
    return this.get(parentOf(rel), entry)!;
  }

  /** rel was removed or replaced: close its fd and those below it. */
  forget(rel: string): void {
    const prefix = rel + '/';
    for (const [d, fd] of this.fds) {
      if (d !== '' && (d === rel || d.startsWith(prefix))) {
        closeSync(fd);
        this.fds.delete(d);
      }
    }
  }

  /** Close the least recently used fds beyond KEEP. Invalidates fds handed out before. */
  trim(): void {
    for (const [d, fd] of this.fds) {
      if (this.fds.size <= DirFds.KEEP) break;
      if (d !== '') {
        closeSync(fd);
        this.fds.delete(d);
      }
    }
  }

  /** Close everything but the root. */
  close(): void {
    for (const [d, fd] of this.fds) if (d !== '') closeSync(fd);
    this.fds.clear();
  }
}
