// Entry metadata for unpack.ts: owner, mode, xattrs and times of what a layer put in place, and the final
// pass over its directories. Split out because metadata has rules of its own (chown before chmod, overlay's
// attributes refused, directories last and reopened beneath the root) apart from creating the entries.
import { closeSync, fchmodSync, fchownSync, futimesSync, lchownSync, lutimesSync } from 'node:fs';
import { at, chmodAt, DIR_FLAGS, fsetXattr, openBeneath, overlayXattrPrefix, setXattr } from '@tsbuild/sys';
import type { TarHeader } from './tar-header.js';
import { hostile } from './safe-path.js';

function ignorableXattrError(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'ENOTSUP' || code === 'EOPNOTSUPP';
}

function setXattrs(h: TarHeader, set: (k: string, v: Buffer) => void): void {
  for (const [k, v] of Object.entries(h.xattrs)) {
    // overlay's own attributes (redirect, metacopy, opaque...) from a tar could make the
    // kernel look elsewhere: only markers translated here may set them.
    if (k.startsWith('trusted.overlay.') || k.startsWith(overlayXattrPrefix())) continue;
    try {
      set(k, v);
    } catch (e) {
      if (!ignorableXattrError(e)) throw e;
    }
  }
}

/** Metadata of an open regular file or directory. chown first: it clears setuid/setgid and security.capability. */
export function applyMetaFd(fd: number, h: TarHeader, sameOwner: boolean): void {
  if (sameOwner) fchownSync(fd, h.uid, h.gid);
  fchmodSync(fd, h.mode & 0o7777);
  setXattrs(h, (k, v) => fsetXattr(fd, k, v));
  futimesSync(fd, h.mtime, h.mtime);
}

/** Metadata of a symlink, fifo or device node `name` in pfd, without following it. */
export function applyMetaAt(pfd: number, name: string, h: TarHeader, isSymlink: boolean, sameOwner: boolean): void {
  const path = at(pfd, name);
  if (sameOwner) lchownSync(path, h.uid, h.gid);
  if (!isSymlink) chmodAt(pfd, name, h.mode & 0o7777);
  setXattrs(h, (k, v) => setXattr(path, k, v));
  lutimesSync(path, h.mtime, h.mtime);
}

/**
 * Directories last, deepest first: their mtimes are not disturbed by children any more.
 * Each is opened afresh beneath the root, refusing symlinks: what is there now is what
 * gets the metadata, and a directory that was replaced had its queued metadata dropped.
 */
export function applyDirMeta(rootFd: number, dirMeta: Map<string, TarHeader>, sameOwner: boolean): void {
  const order = [...dirMeta.keys()].sort((a, b) => b.length - a.length);
  for (const rel of order) {
    let fd: number;
    try {
      fd = rel === '' ? rootFd : openBeneath(rootFd, rel, DIR_FLAGS);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENOENT' || code === 'EXDEV') {
        const why = `directory ${JSON.stringify(rel)} is no longer a directory of the layer (${code})`;
        throw hostile(dirMeta.get(rel)!.name, why);
      }
      throw e;
    }
    try {
      applyMetaFd(fd, dirMeta.get(rel)!, sameOwner);
    } finally {
      if (fd !== rootFd) closeSync(fd);
    }
  }
}
