// File operations beneath a directory fd that never follow a symlink: how COPY/ADD/WORKDIR write
// their staging tree. A source of a COPY (another stage, an archive, the context) can stage a
// symlink to any host path; a later write by path (a heredoc, a file of another source, tar)
// would follow it onto the host, as root. Here every path is resolved by openat2(2) with
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS from the tree's root fd, new names are made with the *at
// calls in a directory fd resolved that way, files are created O_CREAT|O_EXCL|O_NOFOLLOW, and
// owner, mode and times are set on the opened fd (or with AT_SYMLINK_NOFOLLOW on a link).
//
// The tree itself (class Beneath) is in beneath-tree.ts; this file is the syscalls under it.
//
// The syscalls themselves (libc through ffi-rs, openat2, errno as err.code in SysError) are
// @tsbuild/sys's, the one beneath-fd mechanism layerstore's unpack and snapshots use too; what is
// the builder's own here is its byte-exact names (listing.ts) and the staging tree's helpers.
import { call, DataType, openat2 as sysOpenat2, O_CLOEXEC, removeTreeAt, type SysError } from '@tsbuild/sys';
import { closeSync, constants as fsc, fstatSync, openSync, readSync, readdirSync, writeSync } from 'node:fs';
import { decodeName, encodeName } from '../context/listing.js';

export { call, DataType, O_PATH } from '@tsbuild/sys';

/**
 * A path for libc: NUL-terminated bytes. Names that are not UTF-8 travel as the context listing
 * spells them (surrogate-escaped, listing.ts) and get their own bytes back here.
 */
export function cstr(path: string): Buffer {
  return Buffer.concat([encodeName(path), Buffer.of(0)]);
}

/** The names in a directory fd, decoded as the listing does (bytes that are not UTF-8 kept). */
export function namesIn(fd: number): string[] {
  // Read through the fd's own /proc link: the directory that was opened, not a path.
  return readdirSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' }).map((b) => decodeName(b));
}

export const MAX_CACHED = 64;
export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const FICLONE = 0x40049409;

/**
 * openat2 beneath `dirfd` with no symlink anywhere in `path` (the last component neither, unless
 * the flags are O_PATH|O_NOFOLLOW: then an fd of the link itself). `what` names it in errors.
 */
export function openat2(dirfd: number, path: string, flags: number, mode: number, what: string): number {
  return sysOpenat2(dirfd, encodeName(path), flags, mode, what);
}

/** unlinkat, and for a directory @tsbuild/sys's removeTreeAt (beneath the directory's own fds); missing is fine. */
export function removeAt(dirfd: number, name: string, what: string): void {
  try {
    call('unlinkat', what, [DataType.I32, DataType.U8Array, DataType.I32], [dirfd, cstr(name), 0]);
    return;
  } catch (e) {
    const code = (e as SysError).code;
    if (code === 'ENOENT') return;
    if (code !== 'EISDIR' && code !== 'EPERM') throw e;
  }
  removeTreeAt(dirfd, encodeName(name));
}

let copyBuf: Buffer | undefined;

/**
 * Copies host file `src` (opened without following a final link, or an fd of it) into `fd`: a reflink where the
 * filesystem can. Only a regular file: callers check the kind first, and this is the second fence
 * (O_NONBLOCK so that a FIFO put in its place cannot block the open).
 */
export function copyInto(fd: number, src: string | number): void {
  // A number: the source already open (read beneath its tree by the caller, which closes it).
  const from =
    typeof src === 'number'
      ? src
      : openSync(encodeName(src), fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY | O_CLOEXEC);
  try {
    if (!fstatSync(from).isFile()) throw new Error(`copy ${src}: not a regular file`);
    try {
      call('ioctl', String(src), [DataType.I32, DataType.I64, DataType.I32], [fd, FICLONE, from]);
      return;
    } catch {
      // another filesystem, or one without reflinks: copy the bytes
    }
    const buf = (copyBuf ??= Buffer.allocUnsafe(1 << 20));
    for (;;) {
      const n = readSync(from, buf, 0, buf.length, null);
      if (n === 0) break;
      for (let off = 0; off < n;) off += writeSync(fd, buf, off, n - off);
    }
  } finally {
    if (from !== src) closeSync(from);
  }
}

/** utimensat's two timespecs (atime, mtime), both `t`. */
export function timespecs(t: Date): Buffer {
  const ts = Buffer.alloc(32);
  const sec = BigInt(Math.floor(t.getTime() / 1000));
  const nsec = BigInt((((t.getTime() % 1000) + 1000) % 1000) * 1e6);
  ts.writeBigInt64LE(sec, 0);
  ts.writeBigInt64LE(nsec, 8);
  ts.writeBigInt64LE(sec, 16);
  ts.writeBigInt64LE(nsec, 24);
  return ts;
}
