// The staging tree of COPY/ADD/WORKDIR and the RUN step's mount targets: a directory written only
// beneath its root fd, with the syscalls of beneath.ts (see there for why and how).
import {
  closeSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  openSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { makedev, type SysError } from '@tsbuild/sys';
import {
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  DataType,
  MAX_CACHED,
  O_PATH,
  call,
  copyInto,
  cstr,
  openat2,
  removeAt,
  timespecs,
} from './beneath.js';

/** A device node (its numbers) or a FIFO. */
export type SpecialNode = { type: 'char' | 'block'; major: number; minor: number } | { type: 'fifo' };

export interface FileMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime?: Date;
}

/** A directory tree written only beneath its root fd. Paths are relative to the root ('' is the root). */
/** linkat(2): follow `oldpath` if it is a link (here: a /proc/self/fd magic link). */
const AT_SYMLINK_FOLLOW = 0x400;

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
      if ((e as SysError).code === 'ENOENT') return undefined;
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
      if (!parents || i < 0 || (e as SysError).code !== 'ENOENT') throw e;
      this.mkdir(rel.slice(0, i), 0o755, 0, 0, true);
      p = this.parent(rel);
    }
    call('mkdirat', rel, [DataType.I32, DataType.U8Array, DataType.I32], [p.fd, cstr(p.name), 0o700]);
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

  /**
   * Writes a new file `rel` from `content` (bytes or a host file to copy: its path, or an fd the caller opened and
   * closes) and sets its metadata on the fd.
   */
  writeFile(rel: string, content: Buffer | { copyOf: string | number }, meta: FileMeta): void {
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
    this.linkAt(rel, host, 0);
  }

  /**
   * Makes `rel` a hard link of the file open as `fd` (linkat through its /proc link: the inode the caller opened
   * and checked, whatever its path names now).
   */
  linkFd(rel: string, fd: number): void {
    this.linkAt(rel, `/proc/self/fd/${fd}`, AT_SYMLINK_FOLLOW);
  }

  /** linkat(AT_FDCWD, from, parent of rel, its name, flags): the one hard-link call of link and linkFd. */
  private linkAt(rel: string, from: string, flags: number): void {
    const p = this.parent(rel);
    call(
      'linkat',
      rel,
      [DataType.I32, DataType.U8Array, DataType.I32, DataType.U8Array, DataType.I32],
      [AT_FDCWD, cstr(from), p.fd, cstr(p.name), flags],
    );
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
      call('linkat', rel, [DataType.I32, DataType.U8Array, DataType.I32, DataType.U8Array, DataType.I32], args);
    } finally {
      closeSync(from);
    }
  }

  /** Makes symlink `rel` → `target` with this owner and time, never following it. */
  symlink(rel: string, target: string, uid: number, gid: number, mtime: Date): void {
    const p = this.parent(rel);
    call('symlinkat', rel, [DataType.U8Array, DataType.I32, DataType.U8Array], [cstr(target), p.fd, cstr(p.name)]);
    call(
      'fchownat',
      rel,
      [DataType.I32, DataType.U8Array, DataType.I32, DataType.I32, DataType.I32],
      [p.fd, cstr(p.name), uid, gid, AT_SYMLINK_NOFOLLOW],
    );
    const ts = Buffer.alloc(32);
    const sec = BigInt(Math.floor(mtime.getTime() / 1000));
    const nsec = BigInt((mtime.getTime() % 1000) * 1e6);
    (ts.writeBigInt64LE(sec, 0),
      ts.writeBigInt64LE(nsec, 8),
      ts.writeBigInt64LE(sec, 16),
      ts.writeBigInt64LE(nsec, 24));
    call(
      'utimensat',
      rel,
      [DataType.I32, DataType.U8Array, DataType.U8Array, DataType.I32],
      [p.fd, cstr(p.name), ts, AT_SYMLINK_NOFOLLOW],
    );
  }

  /**
   * Makes a device node or FIFO at `rel` with this mode, owner and time; it is never opened (it is
   * only ever used below a nodev mount). The mode is set after mknodat, which the umask trims.
   */
  mknod(rel: string, node: SpecialNode, meta: Required<FileMeta>): void {
    const p = this.parent(rel);
    const type = node.type === 'fifo' ? fsc.S_IFIFO : node.type === 'char' ? fsc.S_IFCHR : fsc.S_IFBLK;
    const dev = node.type === 'fifo' ? 0n : makedev(node.major, node.minor);
    const name = cstr(p.name);
    call(
      'mknodat',
      rel,
      [DataType.I32, DataType.U8Array, DataType.U32, DataType.BigInt],
      [p.fd, name, type | (meta.mode & 0o777), dev],
    );
    call(
      'fchownat',
      rel,
      [DataType.I32, DataType.U8Array, DataType.I32, DataType.I32, DataType.I32],
      [p.fd, name, meta.uid, meta.gid, AT_SYMLINK_NOFOLLOW],
    );
    // After the chown, which clears setuid/setgid; glibc's fchmodat does AT_SYMLINK_NOFOLLOW on a non-link.
    call(
      'fchmodat',
      rel,
      [DataType.I32, DataType.U8Array, DataType.U32, DataType.I32],
      [p.fd, name, meta.mode & 0o7777, AT_SYMLINK_NOFOLLOW],
    );
    const ts = timespecs(meta.mtime);
    call(
      'utimensat',
      rel,
      [DataType.I32, DataType.U8Array, DataType.U8Array, DataType.I32],
      [p.fd, name, ts, AT_SYMLINK_NOFOLLOW],
    );
  }

  /** Gives directory `rel` (opened without following a link) this owner and mode. */
  setDirMeta(rel: string, mode: number, uid: number, gid: number): void {
    const fd = this.open(this.root, rel, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
    try {
      fchownSync(fd, uid, gid);
      fchmodSync(fd, mode); // after chown, which clears setuid/setgid bits
    } finally {
      closeSync(fd);
    }
  }

  /** Sets the times of directory `rel` (a number: seconds since the epoch, as utimes takes). */
  setDirTimes(rel: string, mtime: Date | number): void {
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
      if ((e as SysError).code === 'ENOENT') return;
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
    call(
      'renameat',
      rel,
      [DataType.I32, DataType.U8Array, DataType.I32, DataType.U8Array],
      [fromDir, cstr(name), p.fd, cstr(p.name)],
    );
  }
}
