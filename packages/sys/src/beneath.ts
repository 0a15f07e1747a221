// File operations beneath a directory file descriptor that never follow a symlink, for trees
// whose content is untrusted (a layer being unpacked, a tree a layer is applied onto, the builder's
// staging tree of COPY/ADD/WORKDIR: its Beneath class is built on openat2 and call() from here).
//
// Node has no *at() calls. Two ways in, each used where it is cheapest:
//  - openBeneath: openat2(2) with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS opens a path of several
//    components below a directory fd in one call, failing (ELOOP, EXDEV) rather than following
//    any symlink or leaving the tree. Through ffi-rs and syscall(2): glibc 2.36 has no wrapper.
//    Where the kernel lacks openat2 (before 5.6) or a seccomp filter refuses it, the same walk
//    is done one component at a time with O_NOFOLLOW|O_DIRECTORY.
//  - at(fd, name): `/proc/self/fd/FD/NAME` names NAME inside exactly the directory the fd holds:
//    the kernel resolves /proc/self/fd/FD to the open file itself, not by its path, so no rename
//    or symlink can redirect it. Given to calls that do not follow their last component (lstat,
//    lchown, lutimes, mkdir, symlink, link, unlink, rmdir, mknod, lsetxattr, readdir of the fd,
//    open with O_NOFOLLOW or O_CREAT|O_EXCL) it is the *at() call with AT_SYMLINK_NOFOLLOW, made
//    through Node's own bindings: ~2 µs a call where ffi-rs costs ~10 µs, which adds up over a
//    20,000-file layer. NAME must be one component: at() refuses '/', '.', '..' and ''.
import {
  chmodSync,
  closeSync,
  existsSync,
  constants as fsc,
  fstatSync,
  openSync,
  readdirSync,
  rmdirSync,
  unlinkSync,
} from 'node:fs';
import { constants as osConstants } from 'node:os';
import { call, DataType, SysError } from './libc.js';

/** O_PATH (the same value on every Linux architecture Node runs on); node:fs does not export it. */
export const O_PATH = 0o10000000;
/** Not in node:fs's constants either. */
export const O_CLOEXEC = 0o2000000;
// openat2 has no glibc wrapper on Debian 12: it is syscall(437), the same number on every Linux
// architecture (it is past the point where the tables were unified).
const SYS_openat2 = 437;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_NO_SYMLINKS = 0x04;
const RESOLVE_BENEATH = 0x08;

/** Flags for opening a directory to work in: never through a symlink. */
export const DIR_FLAGS = fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW;

const oneComponent = (name: string): boolean =>
  name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');

/** The path that names `name` inside the directory open as dirfd (see the header). */
export function at(dirfd: number, name: string): string {
  if (!oneComponent(name)) {
    throw new RangeError(`not a single path component: ${JSON.stringify(name)}`);
  }
  return `/proc/self/fd/${dirfd}/${name}`;
}

/** The directory open as dirfd itself, for readdir. */
export function self(dirfd: number): string {
  return `/proc/self/fd/${dirfd}`;
}

/**
 * openat2(2) of `path` beneath `dirfd` with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS:
 * no symlink anywhere in `path` (the last component neither, unless the flags are O_PATH|O_NOFOLLOW:
 * then an fd of the link itself), no '..' out of the tree (EXDEV). `path` as text or as its own
 * bytes (a name that is not UTF-8); `what` names it in errors. ENOSYS or EPERM where the kernel
 * lacks openat2 (before 5.6) or a seccomp filter refuses it. The caller closes the returned fd.
 */
export function openat2(dirfd: number, path: string | Buffer, flags: number, mode = 0, what = String(path)): number {
  const how = Buffer.alloc(24); // struct open_how { u64 flags; u64 mode; u64 resolve; }
  how.writeBigUInt64LE(BigInt(flags | O_CLOEXEC), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), 16);
  const bytes = Buffer.concat([typeof path === 'string' ? Buffer.from(path) : path, Buffer.of(0)]);
  return call(
    'syscall',
    what,
    [DataType.I64, DataType.I64, DataType.U8Array, DataType.U8Array, DataType.I64],
    [SYS_openat2, dirfd, bytes, how, how.length],
    'openat2',
  );
}

let haveOpenat2 = true;
let procFd: boolean | undefined;
/**
 * Whether /proc/self/fd is there, looked at once: at() and self() name files through it, and where /proc is not
 * mounted the callers that can do without them (openBeneath, a reopen of an O_PATH fd) take another way.
 */
export function haveProcFd(): boolean {
  return (procFd ??= existsSync('/proc/self/fd'));
}
const ENOENT = osConstants.errno.ENOENT;

/**
 * Open rel ('a/b/c', relative, no '..') beneath dirfd without following any symlink on the way
 * or at the end. Fails with ELOOP at a symlink, ENOTDIR at a non-directory, ENOENT when missing.
 * The caller closes the returned fd.
 */
export function openBeneath(dirfd: number, rel: string, flags: number, mode = 0): number {
  // One component needs no openat2: at() with O_NOFOLLOW is openat(dirfd, rel, O_NOFOLLOW), beneath by
  // construction, and through Node's own bindings. A no-op build opens nothing else this way (its Dockerfile at
  // the context's top), and loading ffi-rs for that one call was ~2 ms of it (bench/RESULTS.md, issue 17).
  if (oneComponent(rel) && procFd !== false) {
    try {
      return openSync(at(dirfd, rel), flags | fsc.O_NOFOLLOW, mode);
    } catch (e) {
      const errno = (e as NodeJS.ErrnoException).errno;
      // ENOENT where /proc is not mounted (a cached build needs nothing else of it): openat2 below, from now on.
      if (errno !== -ENOENT || haveProcFd()) {
        // As openat2 reports it: the name given, not the /proc path at() made of it.
        throw typeof errno === 'number' ? new SysError('open', -errno, rel) : e;
      }
    }
  }
  if (haveOpenat2) {
    try {
      return openat2(dirfd, rel, flags | fsc.O_NOFOLLOW, mode);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== 'ENOSYS' && code !== 'EPERM') throw e;
      haveOpenat2 = false; // no openat2 here: walk instead, from now on
    }
  }
  return walkBeneath(dirfd, rel, flags, mode);
}

/** openBeneath, one component at a time (where openat2 is missing; exported for its test). */
export function walkBeneath(dirfd: number, rel: string, flags: number, mode: number): number {
  const parts = rel.split('/');
  let cur = dirfd;
  try {
    for (let i = 0; i < parts.length - 1; i++) {
      const next = openSync(at(cur, parts[i]), DIR_FLAGS);
      if (cur !== dirfd) closeSync(cur);
      cur = next;
    }
    return openSync(at(cur, parts[parts.length - 1]), flags | fsc.O_NOFOLLOW, mode);
  } finally {
    if (cur !== dirfd) closeSync(cur);
  }
}

/**
 * chmod of name in dirfd without following it: chmod(2) follows a symlink, and Linux has no
 * fchmodat(AT_SYMLINK_NOFOLLOW) before 6.6. Open the entry itself with O_PATH|O_NOFOLLOW and
 * chmod it through its fd's /proc link, as glibc does. For nodes that cannot be opened for
 * real (fifos would block, devices must not be opened); regular files and directories use fchmod.
 */
export function chmodAt(dirfd: number, name: string, mode: number): void {
  const fd = openSync(at(dirfd, name), O_PATH | fsc.O_NOFOLLOW);
  try {
    if (fstatSync(fd).isSymbolicLink())
      throw Object.assign(new Error(`chmod of a symlink: ${name}`), { code: 'ELOOP' });
    chmodSync(self(fd), mode);
  } finally {
    closeSync(fd);
  }
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** at() for a name as its bytes (one a directory listing gave, which need not be UTF-8). */
function atBytes(dirfd: number, name: Buffer): Buffer {
  if (name.length === 0 || name.equals(DOT) || name.equals(DOTDOT) || name.includes(0x2f) || name.includes(0)) {
    throw new RangeError(`not a single path component: ${JSON.stringify(name.toString('latin1'))}`);
  }
  return Buffer.concat([Buffer.from(`/proc/self/fd/${dirfd}/`), name]);
}

/**
 * rm -r of directory `name` in dirfd, beneath fds all the way down; never follows a symlink. Names
 * below are handled as bytes, so a name that is not UTF-8 is removed too. `name` as text or bytes.
 */
export function removeTreeAt(dirfd: number, name: string | Buffer): void {
  const path = typeof name === 'string' ? at(dirfd, name) : atBytes(dirfd, name);
  const fd = openSync(path, DIR_FLAGS);
  try {
    for (const child of readdirSync(self(fd), { withFileTypes: true, encoding: 'buffer' })) {
      const childName = child.name as unknown as Buffer;
      if (child.isDirectory()) {
        removeTreeAt(fd, childName);
        continue;
      }
      try {
        unlinkSync(atBytes(fd, childName));
      } catch (e) {
        // d_type was unknown (some file systems): unlink(2) says EISDIR for a directory.
        if ((e as { code?: string }).code !== 'EISDIR') throw e;
        removeTreeAt(fd, childName);
      }
    }
  } finally {
    closeSync(fd);
  }
  rmdirSync(path);
}
