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
// Node has no openat: libc is reached through ffi-rs (a dependency of the builder already),
// loaded on first use. openat2 has no glibc wrapper on Debian 12: it is syscall(437), the
// same number on every Linux architecture (it is past the point where the tables were unified).
import type * as Ffi from 'ffi-rs';
import { closeSync, constants as fsc, fstatSync, openSync, readSync, readdirSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as os } from 'node:os';
import { decodeName, encodeName } from '../context/listing.js';

const LIB = 'libc';
let ffi: typeof Ffi | undefined;

function lib(): typeof Ffi {
  if (!ffi) {
    const loaded = createRequire(import.meta.url)('ffi-rs') as typeof Ffi;
    loaded.open({ library: LIB, path: 'libc.so.6' });
    ffi = loaded;
  }
  return ffi;
}

const errnoNames = new Map<number, string>(Object.entries(os.errno).map(([name, n]) => [n, name]));

/** A failed call, with err.code as node:fs gives it, so callers test codes the same way. */
export class BeneathError extends Error {
  readonly code: string;
  constructor(
    readonly syscall: string,
    readonly errno: number,
    readonly path: string,
  ) {
    const code = errnoNames.get(errno) ?? `E${errno}`;
    super(`${syscall} ${path}: ${code}`);
    this.code = code;
  }
}

/**
 * Calls libc's funcName; throws BeneathError when it returns -1. Every function used here returns
 * int except syscall(), which returns long: the return type must match, or -1 reads as 2^32-1.
 */
export function call(funcName: string, path: string, types: (keyof typeof Ffi.DataType)[], values: unknown[]): number {
  const f = lib();
  const retType = funcName === 'syscall' ? f.DataType.I64 : f.DataType.I32;
  const paramsType = types.map((t) => f.DataType[t]);
  const r = f.load({ library: LIB, funcName, retType, paramsType, paramsValue: values, errno: true }) as unknown as {
    value: number;
    errnoCode: number;
  };
  if (r.value === -1) throw new BeneathError(funcName === 'syscall' ? 'openat2' : funcName, r.errnoCode, path);
  return r.value;
}

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

export const SYS_openat2 = 437;
export const MAX_CACHED = 64;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const O_PATH = 0o10000000;
export const O_CLOEXEC = 0o2000000; // not in node:fs constants
export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const FICLONE = 0x40049409;

/**
 * openat2 beneath `dirfd` with no symlink anywhere in `path` (the last component neither, unless
 * the flags are O_PATH|O_NOFOLLOW: then an fd of the link itself). `what` names it in errors.
 */
export function openat2(dirfd: number, path: string, flags: number, mode: number, what: string): number {
  const how = Buffer.alloc(24); // struct open_how { u64 flags, mode, resolve; }
  how.writeBigUInt64LE(BigInt(flags | O_CLOEXEC), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), 16);
  const types: (keyof typeof Ffi.DataType)[] = ['I64', 'I32', 'U8Array', 'U8Array', 'I64'];
  return call('syscall', what, types, [SYS_openat2, dirfd, cstr(path), how, how.length]);
}

/** unlinkat, and for a directory its contents first, each beneath the directory's own fd. */
export function removeAt(dirfd: number, name: string, what: string): void {
  try {
    call('unlinkat', what, ['I32', 'U8Array', 'I32'], [dirfd, cstr(name), 0]);
    return;
  } catch (e) {
    const code = (e as BeneathError).code;
    if (code === 'ENOENT') return;
    if (code !== 'EISDIR' && code !== 'EPERM') throw e;
  }
  const fd = openat2(dirfd, name, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW, 0, what);
  try {
    for (const child of namesIn(fd)) removeAt(fd, child, `${what}/${child}`);
  } finally {
    closeSync(fd);
  }
  call('unlinkat', what, ['I32', 'U8Array', 'I32'], [dirfd, cstr(name), AT_REMOVEDIR]);
}

let copyBuf: Buffer | undefined;

/**
 * Copies host file `src` (opened without following a final link) into `fd`: a reflink where the
 * filesystem can. Only a regular file: callers check the kind first, and this is the second fence
 * (O_NONBLOCK so that a FIFO put in its place cannot block the open).
 */
export function copyInto(fd: number, src: string): void {
  const from = openSync(encodeName(src), fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY | O_CLOEXEC);
  try {
    if (!fstatSync(from).isFile()) throw new Error(`copy ${src}: not a regular file`);
    try {
      call('ioctl', src, ['I32', 'I64', 'I32'], [fd, FICLONE, from]);
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
    closeSync(from);
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

/** glibc's gnu_dev_makedev (a number: majors and minors of real devices stay far below 2^53). */
export function makedev(major: number, minor: number): number {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return Number(((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n));
}
