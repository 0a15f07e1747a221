// File operations beneath a directory fd that never follow a symlink: how COPY/ADD/WORKDIR write
// their staging tree. A source of a COPY (another stage, an archive, the context) can stage a
// symlink to any host path; a later write by path (a heredoc, a file of another source, tar)
// would follow it onto the host, as root. Here every path is resolved by openat2(2) with
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS from the tree's root fd, new names are made with the *at
// calls in a directory fd resolved that way, files are created O_CREAT|O_EXCL|O_NOFOLLOW, and
// owner, mode and times are set on the opened fd (or with AT_SYMLINK_NOFOLLOW on a link).
//
// Node has no openat: libc is reached through ffi-rs (a dependency of the builder already),
// loaded on first use. openat2 has no glibc wrapper on Debian 12: it is syscall(437), the
// same number on every Linux architecture (it is past the point where the tables were unified).
import type * as Ffi from 'ffi-rs';
import {
  closeSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  openSync,
  readSync,
  readdirSync,
  writeSync,
  type Stats,
} from 'node:fs';
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
function call(funcName: string, path: string, types: (keyof typeof Ffi.DataType)[], values: unknown[]): number {
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
function cstr(path: string): Buffer {
  return Buffer.concat([encodeName(path), Buffer.of(0)]);
}

/** The names in a directory fd, decoded as the listing does (bytes that are not UTF-8 kept). */
export function namesIn(fd: number): string[] {
  // Read through the fd's own /proc link: the directory that was opened, not a path.
  return readdirSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' }).map((b) => decodeName(b));
}

const SYS_openat2 = 437;
const MAX_CACHED = 64;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_NO_SYMLINKS = 0x04;
const RESOLVE_BENEATH = 0x08;
const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000; // not in node:fs constants
const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const FICLONE = 0x40049409;

/** A device node (its numbers) or a FIFO. */
export type SpecialNode = { type: 'char' | 'block'; major: number; minor: number } | { type: 'fifo' };

export interface FileMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime?: Date;
}

/** A directory tree written only beneath its root fd. Paths are relative to the root ('' is the root). */
export class Beneath {
  private readonly root: number;
  /** Directory fds (O_PATH) by path, each resolved once beneath the root; dropped when removed. */
  private readonly dirs = new Map<string, number>();

  /** `root` itself is trusted (a scratch directory of the store). */
  constructor(readonly rootPath: string) {
    this.root = openSync(rootPath, O_PATH | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
  }

  close(): void {
    for (const fd of this.dirs.values()) closeSync(fd);
    this.dirs.clear();
    closeSync(this.root);
  }

  private open(dirfd: number, rel: string, flags: number, mode = 0): number {
    return openat2(dirfd, rel || '.', flags, mode, rel);
  }

  /**
   * The fd of directory `rel` (a real directory beneath the root, no link on the way), valid until
   * the next call: at most MAX_CACHED stay open (a tree of 20,000 directories must not run out
   * of fds). Whoever holds one across other calls takes its own with openDir.
   */
  dir(rel: string): number {
    if (rel === '') return this.root;
    let fd = this.dirs.get(rel);
    if (fd === undefined) {
      if (this.dirs.size >= MAX_CACHED) {
        const [oldest, old] = this.dirs.entries().next().value as [string, number];
        this.dirs.delete(oldest);
        closeSync(old);
      }
      fd = this.open(this.root, rel, O_PATH | fsc.O_DIRECTORY);
      this.dirs.set(rel, fd);
    }
    return fd;
  }

  /** An fd of directory `rel` of the caller's own (it closes it). */
  openDir(rel: string): number {
    return this.open(this.root, rel, O_PATH | fsc.O_DIRECTORY);
  }

  private parent(rel: string): { fd: number; name: string } {
    const i = rel.lastIndexOf('/');
    if (rel === '' || rel.endsWith('/')) throw new Error(`internal: not a name: "${rel}"`);
    return { fd: this.dir(i < 0 ? '' : rel.slice(0, i)), name: rel.slice(i + 1) };
  }

  /** lstat of `rel`, or undefined when it (or a directory on the way) does not exist. A link on the way is an error. */
  lstat(rel: string): Stats | undefined {
    let fd: number;
    try {
      fd = this.open(this.root, rel, O_PATH | fsc.O_NOFOLLOW);
    } catch (e) {
      if ((e as BeneathError).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      return fstatSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Makes directory `rel` with this owner and mode. Its parent must exist, unless `parents`:
   * then missing ones are made 0755 root:root (what mkdir -p makes as root).
   */
  mkdir(rel: string, mode: number, uid: number, gid: number, parents = false): void {
    let p: { fd: number; name: string };
    try {
      p = this.parent(rel);
    } catch (e) {
      const i = rel.lastIndexOf('/');
      if (!parents || i < 0 || (e as BeneathError).code !== 'ENOENT') throw e;
      this.mkdir(rel.slice(0, i), 0o755, 0, 0, true);
      p = this.parent(rel);
    }
    call('mkdirat', rel, ['I32', 'U8Array', 'I32'], [p.fd, cstr(p.name), 0o700]);
    const fd = this.open(p.fd, p.name, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
    try {
      fchownSync(fd, uid, gid);
      fchmodSync(fd, mode); // after chown, which clears setuid/setgid bits
    } finally {
      closeSync(fd);
    }
  }

  /** Creates regular file `rel` (nothing may be there) and returns its fd, open for writing. */
  create(rel: string): number {
    const p = this.parent(rel);
    return this.open(p.fd, p.name, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  }

  /** Writes a new file `rel` from `content` (bytes or a host file to copy) and sets its metadata on the fd. */
  writeFile(rel: string, content: Buffer | { copyOf: string }, meta: FileMeta): void {
    const fd = this.create(rel);
    try {
      if (Buffer.isBuffer(content)) {
        for (let off = 0; off < content.length;) off += writeSync(fd, content, off);
      } else {
        copyInto(fd, content.copyOf);
      }
      fchownSync(fd, meta.uid, meta.gid);
      fchmodSync(fd, meta.mode);
      if (meta.mtime) futimesSync(fd, meta.mtime, meta.mtime);
    } finally {
      closeSync(fd);
    }
  }

  /** Makes `rel` a hard link of host file `host` (a final link in `host` is not followed). */
  link(rel: string, host: string): void {
    const p = this.parent(rel);
    call('linkat', rel, ['I32', 'U8Array', 'I32', 'U8Array', 'I32'], [AT_FDCWD, cstr(host), p.fd, cstr(p.name), 0]);
  }

  /** Makes `rel` another name of `existing`, a file beneath the root (neither path may hold a link on the way). */
  linkWithin(rel: string, existing: string): void {
    const i = existing.lastIndexOf('/');
    // Its own fd: parent() below may drop the cached one.
    const from = this.openDir(i < 0 ? '' : existing.slice(0, i));
    try {
      const p = this.parent(rel);
      // Flags 0: a symlink at `existing` would be linked itself, never followed.
      const args = [from, cstr(existing.slice(i + 1)), p.fd, cstr(p.name), 0];
      call('linkat', rel, ['I32', 'U8Array', 'I32', 'U8Array', 'I32'], args);
    } finally {
      closeSync(from);
    }
  }

  /** Makes symlink `rel` → `target` with this owner and time, never following it. */
  symlink(rel: string, target: string, uid: number, gid: number, mtime: Date): void {
    const p = this.parent(rel);
    call('symlinkat', rel, ['U8Array', 'I32', 'U8Array'], [cstr(target), p.fd, cstr(p.name)]);
    call('fchownat', rel, ['I32', 'U8Array', 'I32', 'I32', 'I32'], [p.fd, cstr(p.name), uid, gid, AT_SYMLINK_NOFOLLOW]);
    const ts = Buffer.alloc(32);
    const sec = BigInt(Math.floor(mtime.getTime() / 1000));
    const nsec = BigInt((mtime.getTime() % 1000) * 1e6);
    (ts.writeBigInt64LE(sec, 0),
      ts.writeBigInt64LE(nsec, 8),
      ts.writeBigInt64LE(sec, 16),
      ts.writeBigInt64LE(nsec, 24));
    call('utimensat', rel, ['I32', 'U8Array', 'U8Array', 'I32'], [p.fd, cstr(p.name), ts, AT_SYMLINK_NOFOLLOW]);
  }

  /**
   * Makes a device node or FIFO at `rel` with this mode, owner and time; it is never opened (it is
   * only ever used below a nodev mount). The mode is set after mknodat, which the umask trims.
   */
  mknod(rel: string, node: SpecialNode, meta: Required<FileMeta>): void {
    const p = this.parent(rel);
    const type = node.type === 'fifo' ? fsc.S_IFIFO : node.type === 'char' ? fsc.S_IFCHR : fsc.S_IFBLK;
    const dev = node.type === 'fifo' ? 0 : makedev(node.major, node.minor);
    call('mknodat', rel, ['I32', 'U8Array', 'U32', 'I64'], [p.fd, cstr(p.name), type | (meta.mode & 0o777), dev]);
    this.setMetaAt(p, rel, meta);
  }

  /** Owner, mode and times of `name` in `p.fd`, never following a link there (fchmodat's is glibc's). */
  private setMetaAt(p: { fd: number; name: string }, rel: string, meta: Required<FileMeta>): void {
    const name = cstr(p.name);
    call(
      'fchownat',
      rel,
      ['I32', 'U8Array', 'I32', 'I32', 'I32'],
      [p.fd, name, meta.uid, meta.gid, AT_SYMLINK_NOFOLLOW],
    );
    // After the chown, which clears setuid/setgid.
    call('fchmodat', rel, ['I32', 'U8Array', 'U32', 'I32'], [p.fd, name, meta.mode & 0o7777, AT_SYMLINK_NOFOLLOW]);
    call(
      'utimensat',
      rel,
      ['I32', 'U8Array', 'U8Array', 'I32'],
      [p.fd, name, timespecs(meta.mtime), AT_SYMLINK_NOFOLLOW],
    );
  }

  /** Sets the times of directory `rel`. */
  setDirTimes(rel: string, mtime: Date): void {
    const fd = this.open(this.root, rel, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
    try {
      futimesSync(fd, mtime, mtime);
    } finally {
      closeSync(fd);
    }
  }

  /** Removes whatever is at `rel` (a directory with all below it); nothing there is fine. */
  remove(rel: string): void {
    let p: { fd: number; name: string };
    try {
      p = this.parent(rel);
    } catch (e) {
      if ((e as BeneathError).code === 'ENOENT') return;
      throw e;
    }
    removeAt(p.fd, p.name, rel);
    for (const [k, fd] of this.dirs) {
      if (k === rel || k.startsWith(rel + '/')) {
        closeSync(fd);
        this.dirs.delete(k);
      }
    }
  }

  /** Moves `name` out of directory fd `fromDir` (another tree) to `rel` here; nothing may be at `rel`. */
  moveIn(fromDir: number, name: string, rel: string): void {
    const p = this.parent(rel);
    call('renameat', rel, ['I32', 'U8Array', 'I32', 'U8Array'], [fromDir, cstr(name), p.fd, cstr(p.name)]);
  }
}

/**
 * openat2 beneath `dirfd` with no symlink anywhere in `path` (the last component neither, unless
 * the flags are O_PATH|O_NOFOLLOW: then an fd of the link itself). `what` names it in errors.
 */
function openat2(dirfd: number, path: string, flags: number, mode: number, what: string): number {
  const how = Buffer.alloc(24); // struct open_how { u64 flags, mode, resolve; }
  how.writeBigUInt64LE(BigInt(flags | O_CLOEXEC), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), 16);
  const types: (keyof typeof Ffi.DataType)[] = ['I64', 'I32', 'U8Array', 'U8Array', 'I64'];
  return call('syscall', what, types, [SYS_openat2, dirfd, cstr(path), how, how.length]);
}

/** unlinkat, and for a directory its contents first, each beneath the directory's own fd. */
function removeAt(dirfd: number, name: string, what: string): void {
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

/** utimensat's two timespecs (atime, mtime), both `t`. */
function timespecs(t: Date): Buffer {
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
function makedev(major: number, minor: number): number {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return Number(((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n));
}

let copyBuf: Buffer | undefined;

/**
 * Copies host file `src` (opened without following a final link) into `fd`: a reflink where the
 * filesystem can. Only a regular file: callers check the kind first, and this is the second fence
 * (O_NONBLOCK so that a FIFO put in its place cannot block the open).
 */
function copyInto(fd: number, src: string): void {
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
