// A directory (plain, or an overlay upperdir) as a deterministic sequence of layer entries.
//
// Order: depth first; the children of a directory sorted by the bytes of the names they
// have IN THE TAR (so a whiteout for `b` sorts as `.wh.b`), a directory before its
// children, and an opaque marker immediately after its directory. Creation order, inode
// numbers and readdir order therefore never reach the output.
import {
  closeSync,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  constants as fsc,
  type BigIntStats,
} from 'node:fs';
import { Readable } from 'node:stream';
import { join, resolve } from 'node:path';
import type { Entry } from '../types.js';
import {
  DIR_FLAGS,
  O_PATH,
  getXattr,
  openBeneath,
  overlayXattrPrefix,
  readXattrs,
  major,
  minor,
  self,
} from '@tsbuild/sys';

export interface DirectoryOptions {
  /** Translate overlayfs markers (0/0 char devices, trusted.overlay.opaque) to OCI whiteouts. */
  overlay?: boolean;
  /** Clamp mtimes to this many seconds since the epoch. */
  sourceDateEpoch?: number;
  /**
   * The tree may change while it is read (a running container's upperdir, committed unpaused):
   * every directory is opened beneath the root's fd without following a symlink, and every entry
   * is named through its directory's fd (`/proc/self/fd/N/NAME`), so a directory swapped for a
   * symlink mid-walk cannot lead the walk out of the tree; an entry gone by the time it is looked
   * at is left out. Such an entry's content must be read before the next entry is asked for (as the
   * tar writer does): its directory's fd is closed once the walk leaves it.
   */
  live?: boolean;
}

/** A live tree changed under the walk in a way it must not follow (a directory became a symlink, ...). */
function changed(path: string, e: NodeJS.ErrnoException): Error {
  return new Error(`${path}: the directory changed while it was read (${e.code ?? e.message}): not followed`);
}

/**
 * The host file a directory entry's content is in: the tar writer reads it synchronously,
 * straight into its output chunks, instead of through a Readable (or a buffer) per file.
 */
export const HOST_FILE = Symbol('hostFile');

/** The directory a host file is read beneath (HOST_FILE is below it), when the tree is untrusted. */
export const HOST_ROOT = Symbol('hostRoot');
/** The inode number the listing saw for a host file, when it has one: another file there is refused. */
export const HOST_INO = Symbol('hostIno');

const READ_CHUNK = 1 << 20;

/** Marks an entry of a live walk (DirectoryOptions.live): its content is opened the careful way (openContent). */
export const LIVE_FILE = Symbol('liveFile');

/**
 * Opens a file entry's content (`what` names it in errors) for reading: never through a symlink, and
 * only a regular file. A live tree's file swapped for something else after its lstat must not be
 * opened as what it now is: a FIFO would block the read for good, and a device node (a root container
 * can make one) would feed the layer the host's device, or act on it by being opened. So in a live
 * walk the name is opened as a path only (O_PATH: no open of the inode itself), checked, then opened
 * through that fd. A tree nothing runs in (a finished step's snapshot, a build context) cannot change
 * kind between the walk's lstat and this open, so it takes the plain open (two syscalls and a /proc
 * path walk less per file: ~100 ms of a 20,000-file layer), non-blocking so that even a FIFO put there
 * by the user meanwhile fails the read (EAGAIN) instead of hanging the build.
 */
export function openContent(path: string, what: string, live: boolean): number {
  if (!live) return openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  let pfd: number;
  try {
    pfd = openSync(path, O_PATH | fsc.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ELOOP') throw e;
    throw new Error(`${what}: the file changed while it was read (${code === 'ELOOP' ? 'now a symlink' : 'gone'})`);
  }
  try {
    if (!fstatSync(pfd).isFile())
      throw new Error(`${what}: the file changed while it was read (no longer a regular file): not read`);
    return openSync(self(pfd), fsc.O_RDONLY);
  } finally {
    closeSync(pfd);
  }
}

/**
 * File content read synchronously, for open(): page-cache reads are memcpy-fast, and async fs
 * reads would queue on libuv's thread pool behind the gzip jobs. Reads to EOF, so a file that
 * grew is caught by the tar writer's size check.
 */
function* readChunks(path: string, size: number, what: string, live: boolean): Generator<Buffer> {
  const fd = openContent(path, what, live);
  try {
    let left = size;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.max(1, Math.min(left, READ_CHUNK)));
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) return;
      left -= n;
      yield n === buf.length ? buf : buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * open() of every entry whose content is a host file: one function, reading this[HOST_FILE], shared by all of
 * them. A closure per file (and its context) was a quarter of what a 20,000-file COPY kept in memory until its
 * layer was written, and it grew with the number of files.
 */
function openHostFile(this: { [HOST_FILE]: string; [LIVE_FILE]?: true; size: number; path: string }): Readable {
  return Readable.from(readChunks(this[HOST_FILE], this.size, this.path, this[LIVE_FILE] === true), {
    objectMode: false,
  });
}

function byteOrder(a: { key: Buffer }, b: { key: Buffer }): number {
  return Buffer.compare(a.key, b.key);
}

export async function* entriesFromDirectory(dir: string, opts: DirectoryOptions = {}): AsyncGenerator<Entry> {
  const overlay = opts.overlay ?? false;
  const sde = opts.sourceDateEpoch;
  // dev:ino → first path of that inode in this layer, for tar hardlinks.
  const inodes = new Map<string, string>();

  function xattrsOf(abs: string): Record<string, Buffer> | undefined {
    const all = readXattrs(abs);
    let out: Record<string, Buffer> | undefined;
    for (const k of Object.keys(all).sort()) {
      // overlay bookkeeping (origin, impure, opaque...) never goes in a layer
      if (k.startsWith(overlayXattrPrefix())) continue;
      (out ??= {})[k] = all[k]!;
    }
    return out;
  }

  // live: the root's fd, which every directory is opened beneath (see DirectoryOptions.live).
  const rootFd = opts.live ? openSync(dir, DIR_FLAGS) : -1;
  // Not live: the files are read (later, by the tar writer) beneath the root, never through a symlink
  // that replaced a directory after this walk listed it (read-beneath.ts).
  const top = resolve(dir);
  const content: { [LIVE_FILE]?: true; [HOST_ROOT]?: string } = opts.live
    ? { [LIVE_FILE]: true }
    : top === '/'
      ? {}
      : { [HOST_ROOT]: top };

  /** live: an entry that changed kind or went after its lstat is a clear error, not a raw errno. */
  function guard<T>(path: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw opts.live && (e as NodeJS.ErrnoException).code ? changed(path, e as NodeJS.ErrnoException) : e;
    }
  }

  function openDir(rel: string): number {
    try {
      return openBeneath(rootFd, rel, DIR_FLAGS);
    } catch (e) {
      throw changed(rel, e as NodeJS.ErrnoException);
    }
  }

  function* walk(rel: string): Generator<Entry> {
    const dfd = !opts.live ? -1 : rel === '' ? rootFd : openDir(rel);
    try {
      yield* walkIn(rel, dfd < 0 ? (rel === '' ? top : join(top, rel)) : self(dfd));
    } finally {
      if (dfd >= 0 && dfd !== rootFd) closeSync(dfd);
    }
  }

  function* walkIn(rel: string, abs: string): Generator<Entry> {
    const children: { name: string; key: Buffer; st: BigIntStats; whiteout: boolean }[] = [];
    for (const name of readdirSync(abs)) {
      let st: BigIntStats;
      try {
        st = lstatSync(join(abs, name), { bigint: true });
      } catch (e) {
        if (opts.live && (e as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile
        throw e;
      }
      const whiteout = overlay && st.isCharacterDevice() && st.rdev === 0n;
      children.push({ name, st, whiteout, key: Buffer.from(whiteout ? '.wh.' + name : name) });
    }
    children.sort(byteOrder);
    for (const { name, st, whiteout } of children) {
      const path = rel === '' ? name : rel + '/' + name;
      const full = join(abs, name);
      let mtime = Number(st.mtimeMs / 1000n);
      if (sde !== undefined && mtime > sde) mtime = sde;
      const base = { path, mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), mtime };
      if (whiteout) {
        yield { ...base, type: 'whiteout' };
        continue;
      }
      if (st.isSocket()) continue; // sockets cannot be carried in a tar
      const xattrs = guard(path, () => xattrsOf(full));
      if (st.isDirectory()) {
        yield { ...base, type: 'directory', xattrs };
        if (overlay && guard(path, () => getXattr(full, overlayXattrPrefix() + 'opaque'))?.toString() === 'y')
          yield { ...base, type: 'opaque', xattrs: undefined };
        yield* walk(path);
      } else if (st.isSymbolicLink()) {
        yield { ...base, type: 'symlink', linkname: guard(path, () => readlinkSync(full)), xattrs };
      } else if (st.isFile()) {
        if (st.nlink > 1n) {
          const key = `${st.dev}:${st.ino}`;
          const first = inodes.get(key);
          if (first !== undefined) {
            yield { ...base, type: 'hardlink', linkname: first, xattrs };
            continue;
          }
          inodes.set(key, path);
        }
        const size = Number(st.size);
        yield {
          ...base,
          type: 'file',
          size,
          xattrs,
          open: openHostFile,
          [HOST_FILE]: full,
          ...content,
        } as Entry;
      } else if (st.isFIFO()) {
        yield { ...base, type: 'fifo', xattrs };
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        yield {
          ...base,
          type: st.isCharacterDevice() ? 'char' : 'block',
          devmajor: major(Number(st.rdev)),
          devminor: minor(Number(st.rdev)),
          xattrs,
        };
      }
    }
  }

  try {
    yield* walk('');
  } finally {
    if (rootFd >= 0) closeSync(rootFd);
  }
}

/**
 * A regular-file entry whose content is read from `host`, the same way a directory walk reads
 * it: for callers that already know every entry's metadata (a COPY that placed the files
 * itself) and so need no lstat or xattr call per file.
 */
export function fileEntry(
  meta: Omit<Entry, 'type' | 'open' | 'size' | 'linkname'>,
  host: string,
  size: number,
  root?: string,
  ino?: bigint,
): Entry {
  // Field by field, in one order, rather than spread: this runs once per file of a COPY, and a spread with a
  // symbol key made a slow object each time (most of a 20,000-file tree's entry cost).
  return {
    path: meta.path,
    type: 'file' as const,
    mode: meta.mode,
    uid: meta.uid,
    gid: meta.gid,
    mtime: meta.mtime,
    size,
    xattrs: meta.xattrs,
    open: openHostFile,
    [HOST_FILE]: host,
    [HOST_ROOT]: root,
    [HOST_INO]: ino,
  } as Entry;
}

/**
 * A byte string that sorts like compareEntryPaths: the path's UTF-8 bytes with each '/' as 0,
 * which sorts below every byte a name can hold, so a name sorts before its extensions and a
 * directory before its children.
 */
export function entryOrderKey(path: string): Buffer {
  const key = Buffer.from(path, 'utf8');
  for (let i = key.indexOf(0x2f); i !== -1; i = key.indexOf(0x2f, i + 1)) key[i] = 0;
  return key;
}

/** The order entriesFromDirectory emits: depth first, siblings by the bytes of their names. */
export function compareEntryPaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = Buffer.compare(Buffer.from(pa[i]), Buffer.from(pb[i]));
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}
