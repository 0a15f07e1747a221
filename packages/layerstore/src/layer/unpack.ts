// Unpack a layer blob into a directory.
//
// Two forms: 'overlay' (default) leaves the layer as an overlayfs lowerdir — OCI whiteouts
// become 0/0 char devices, `.wh..wh..opq` becomes trusted.overlay.opaque=y on its directory;
// 'apply' applies the layer onto an existing tree (flattening, for exportRootfs): whiteouts
// delete what lower layers put there.
//
// Entry order does not matter for whiteouts: a whiteout or opaque marker only ever hides
// what came from BELOW this layer, never an entry of the same layer, whichever comes first.
// Duplicate paths within a layer: the last one wins (as tar -x, containerd and BuildKit);
// a directory over a directory merges, anything else replaces.
//
// Every file operation happens beneath a directory fd and never follows a symlink (see
// sys/beneath.ts): entries are created in their parent's fd, and directory metadata, applied
// at the end, goes through an fd opened beneath the root with RESOLVE_NO_SYMLINKS. When a
// directory is replaced or removed, the metadata queued for it and for everything below it is
// dropped: applied later, it would land on whatever took the directory's place.
// Metadata and small writes are synchronous calls: each is a few microseconds, where a
// thread-pool round trip costs more than the call (a layer is tens of thousands of them).
//
// Owners, modes, xattrs and times are unpack-meta.ts's job.
//
// On failure the target is left half-written: the caller unpacks into a temp dir and
// removes it (Snapshots does).
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants as fsc,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import type { Readable } from 'node:stream';
import { StoreError, type Digest } from '../types.js';
import {
  at,
  DIR_FLAGS,
  removeTreeAt,
  mknod,
  S_IFBLK,
  S_IFCHR,
  S_IFIFO,
  fsetXattr,
  overlayXattrPrefix,
} from '@tsbuild/sys';
import { decompress } from './compress.js';
import type { TarHeader } from './tar-header.js';
import { TarFormatError, TarUnsupportedError } from './tar-decode.js';
import { readTar } from './tar-reader.js';
import { baseOf, cleanPath, DirFds, hostile, parentOf } from './safe-path.js';
import { applyDirMeta, applyMetaAt, applyMetaFd } from './unpack-meta.js';

export interface UnpackOptions {
  /** 'overlay' (lowerdir form, default) or 'apply' (onto an existing tree, whiteouts delete). */
  mode?: 'overlay' | 'apply';
  /**
   * Allow char/block device entries (default false; the store allows them, as Docker does: its
   * snapshots are only ever mounted nodev). A 0/0 char device is refused in overlay mode either way.
   */
  allowDevices?: boolean;
  /** Fail with StoreError('corrupt') if the uncompressed tar does not hash to this. */
  diffID?: Digest;
  /** Set owners (default: when running as root). */
  sameOwner?: boolean;
}

export interface UnpackResult {
  diffID: Digest;
  entries: number;
}

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

export async function unpackLayer(
  stream: Readable | AsyncIterable<Buffer>,
  mediaType: string,
  dir: string,
  opts: UnpackOptions = {},
): Promise<UnpackResult> {
  const mode = opts.mode ?? 'overlay';
  const sameOwner = opts.sameOwner ?? process.getuid?.() === 0;
  const hash = createHash('sha256');
  async function* hashed(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const b of src) {
      hash.update(b);
      yield b;
    }
  }
  /** Paths this layer put in place (not whiteouts): whiteouts never hide them. */
  const written = new Set<string>();
  /** Directory metadata is applied last, deepest first, so writing children cannot disturb it. */
  const dirMeta = new Map<string, TarHeader>();
  let entries = 0;
  // The target itself is the caller's: it may be reached through a symlink of theirs.
  const rootFd = openSync(dir, DIR_FLAGS & ~fsc.O_NOFOLLOW);
  const dirs = new DirFds(rootFd);

  function lstatAt(pfd: number, name: string): Stats | undefined {
    return lstatSync(at(pfd, name), { throwIfNoEntry: false });
  }

  /** Remove whatever is at rel (whole tree for a directory), in its parent pfd. */
  function removeAt(pfd: number, rel: string, isDir: boolean): void {
    if (!isDir) {
      unlinkSync(at(pfd, baseOf(rel)));
      return;
    }
    dirs.forget(rel);
    removeTreeAt(pfd, baseOf(rel));
    // Metadata queued below rel must not be applied to whatever takes its place.
    const prefix = rel + '/';
    for (const d of dirMeta.keys()) if (d === rel || d.startsWith(prefix)) dirMeta.delete(d);
  }

  /** Remove everything below rel (open as fd) that this layer did not write (opaque directory, apply mode). */
  function purgeLower(fd: number, rel: string): void {
    for (const name of readdirSync(`/proc/self/fd/${fd}`)) {
      const child = rel === '' ? name : rel + '/' + name;
      const st = lstatSync(at(fd, name));
      if (!written.has(child)) {
        removeAt(fd, child, st.isDirectory());
        continue;
      }
      if (!st.isDirectory()) continue;
      const cfd = openSync(at(fd, name), DIR_FLAGS);
      try {
        purgeLower(cfd, child);
      } finally {
        closeSync(cfd);
      }
    }
  }

  function whiteout(rel: string, entry: string): void {
    if (written.has(rel)) return; // the same layer also has the entry: it wins
    const pfd = dirs.parent(rel, entry);
    const name = baseOf(rel);
    const st = lstatAt(pfd, name);
    if (st) removeAt(pfd, rel, st.isDirectory());
    if (mode === 'apply') return;
    mknod(at(pfd, name), S_IFCHR, 0, 0, 0);
    if (sameOwner) lchownSync(at(pfd, name), 0, 0);
  }

  function opaque(rel: string, entry: string): void {
    if (rel === '') throw hostile(entry, 'opaque marker at the layer root');
    const fd = dirs.get(rel, entry)!;
    if (mode === 'apply') {
      purgeLower(fd, rel);
      return;
    }
    fsetXattr(fd, overlayXattrPrefix() + 'opaque', Buffer.from('y'));
  }

  async function writeFile(pfd: number, name: string, h: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    // O_EXCL|O_NOFOLLOW: the name was just cleared, so anything there now is not ours to follow.
    const fd = openSync(at(pfd, name), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    try {
      // Synchronous writes of the tar's chunks (tens of kB each, into the page cache): the
      // event loop still turns between chunks, as the body is read asynchronously.
      for await (const b of body) {
        let off = 0;
        while (off < b.length) off += writeSync(fd, b, off, b.length - off);
      }
      applyMetaFd(fd, h, sameOwner);
    } finally {
      closeSync(fd);
    }
  }

  async function entry(h: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    const name = h.name;
    const rel = cleanPath(name);
    const base = baseOf(rel);
    for (const comp of parentOf(rel).split('/'))
      if (comp.startsWith(WH)) throw hostile(name, 'whiteout marker used as a directory');
    dirs.trim(); // fds handed out for the previous entry are not used any more

    if (base.startsWith(WH)) {
      if (h.type !== 'file' && h.type !== 'hardlink') throw hostile(name, `whiteout marker of type ${h.type}`);
      if (base === OPAQUE) return opaque(parentOf(rel), name);
      if (base.startsWith(WH + WH)) throw hostile(name, 'unknown .wh..wh. marker');
      const victim = base.slice(WH.length);
      if (victim === '' || victim === '.' || victim === '..') throw hostile(name, 'whiteout of the directory itself');
      const p = parentOf(rel);
      return whiteout(p === '' ? victim : p + '/' + victim, name);
    }

    if (rel === '') {
      // The root entry ('./'): only a directory makes sense; its metadata applies to the target.
      if (h.type !== 'directory') throw hostile(name, `root entry of type ${h.type}`);
      dirMeta.set('', h);
      return;
    }

    if ((h.type === 'char' || h.type === 'block') && !opts.allowDevices)
      throw hostile(name, `${h.type} device entries are not allowed`);
    // In a lowerdir a 0/0 character device IS overlayfs's whiteout: it would silently delete what
    // lower layers hold at that path. Layers say that with .wh. entries.
    if (mode === 'overlay' && h.type === 'char' && h.devmajor === 0 && h.devminor === 0)
      throw hostile(name, 'a 0/0 character device is an overlay whiteout, not a device (use a .wh. entry)');

    // Hardlink source is resolved before anything at rel is removed (a link to itself is refused).
    let linkSource: string | undefined;
    if (h.type === 'hardlink') {
      const src = cleanPath(h.linkname, name);
      if (src === '') throw hostile(name, 'hardlink to the root');
      if (src === rel) throw hostile(name, 'hardlink to itself');
      // Replacing the directory rel would remove the source (and close the fd it is reached by).
      if (src.startsWith(rel + '/')) throw hostile(name, 'hardlink into the directory it replaces');
      for (const comp of src.split('/')) if (comp.startsWith(WH)) throw hostile(name, 'hardlink to a whiteout marker');
      const sfd = dirs.get(parentOf(src), name, false);
      const st = sfd === undefined ? undefined : lstatAt(sfd, baseOf(src));
      if (!st) throw hostile(name, `hardlink to ${JSON.stringify(h.linkname)}, which is not in the layer`);
      if (st.isDirectory()) throw hostile(name, 'hardlink to a directory');
      if (mode === 'overlay' && st.isCharacterDevice() && st.rdev === 0 && !written.has(src))
        throw hostile(name, 'hardlink to a whiteout');
      linkSource = at(sfd!, baseOf(src));
    }

    const pfd = dirs.parent(rel, name);
    const existing = lstatAt(pfd, base);
    if (existing) {
      if (existing.isDirectory() && h.type === 'directory') {
        /* merge: metadata below */
      } else removeAt(pfd, rel, existing.isDirectory());
    }

    switch (h.type) {
      case 'directory':
        if (!existing || !existing.isDirectory()) mkdirSync(at(pfd, base), 0o700);
        written.add(rel);
        dirMeta.set(rel, h);
        return;
      case 'file':
        written.add(rel);
        return writeFile(pfd, base, h, body);
      case 'symlink':
        // The target text is not checked: a symlink is never followed by this code.
        symlinkSync(h.linkname, at(pfd, base));
        break;
      case 'hardlink':
        // link(2) does not follow a symlink source: it links the symlink itself.
        linkSync(linkSource!, at(pfd, base));
        written.add(rel);
        return; // shares the source's inode and metadata
      case 'fifo':
        mknod(at(pfd, base), S_IFIFO, 0o600);
        break;
      case 'char':
      case 'block':
        mknod(at(pfd, base), h.type === 'char' ? S_IFCHR : S_IFBLK, 0o600, h.devmajor, h.devminor);
        break;
    }
    written.add(rel);
    applyMetaAt(pfd, base, h, h.type === 'symlink', sameOwner);
  }

  try {
    try {
      for await (const { header, body } of readTar(hashed(decompress(stream as AsyncIterable<Buffer>, mediaType)))) {
        entries++;
        await entry(header, body);
      }
    } catch (e) {
      if (e instanceof TarUnsupportedError) throw hostile(e.entry, e.message);
      if (e instanceof TarFormatError) throw new StoreError('corrupt', `layer tar: ${e.message}`);
      const code = (e as { code?: string }).code;
      if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') {
        throw new StoreError('corrupt', `layer compression: ${(e as Error).message}`);
      }
      throw e;
    }
    dirs.close();
    applyDirMeta(rootFd, dirMeta, sameOwner);
  } finally {
    dirs.close();
    closeSync(rootFd);
  }

  const diffID = `sha256:${hash.digest('hex')}` as Digest;
  if (opts.diffID && opts.diffID !== diffID)
    throw new StoreError('corrupt', `layer diffID is ${diffID}, expected ${opts.diffID}`, opts.diffID);
  return { diffID, entries };
}
