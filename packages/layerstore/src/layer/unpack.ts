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
// On failure the target is left half-written: the caller unpacks into a temp dir and
// removes it (Snapshots does).
import { createHash } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { chmod, link, lchown, lstat, lutimes, mkdir, open, readdir, rm, symlink, unlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { StoreError, type Digest } from '../types.js';
import { mknod, S_IFBLK, S_IFCHR, S_IFIFO } from '../sys/mknod.js';
import { setXattr } from '../sys/xattr.js';
import { decompress } from './compress.js';
import type { TarHeader } from './tar-header.js';
import { TarFormatError, TarUnsupportedError } from './tar-header.js';
import { readTar } from './tar-reader.js';
import { baseOf, cleanPath, hostile, parentOf, Target } from './safe-path.js';

export interface UnpackOptions {
  /** 'overlay' (lowerdir form, default) or 'apply' (onto an existing tree, whiteouts delete). */
  mode?: 'overlay' | 'apply';
  /** Allow char/block device entries (default false). */
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
const OPAQUE_XATTR = 'trusted.overlay.opaque';

function ignorableXattrError(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'ENOTSUP' || code === 'EOPNOTSUPP';
}

export async function unpackLayer(stream: Readable | AsyncIterable<Buffer>, mediaType: string, dir: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const mode = opts.mode ?? 'overlay';
  const sameOwner = opts.sameOwner ?? process.getuid?.() === 0;
  const target = new Target(dir);
  const hash = createHash('sha256');
  async function* hashed(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const b of src) { hash.update(b); yield b; }
  }
  /** Paths this layer put in place (not whiteouts): whiteouts never hide them. */
  const written = new Set<string>();
  /** Directory metadata is applied last, deepest first, so writing children cannot disturb it. */
  const dirMeta = new Map<string, TarHeader>();
  let entries = 0;

  async function lstatOrUndefined(abs: string) {
    return lstat(abs).catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return undefined; throw e; });
  }

  /** Remove whatever is at rel (whole tree for a directory). */
  async function removeAt(rel: string, isDir: boolean): Promise<void> {
    if (isDir) { await rm(target.abs(rel), { recursive: true, force: true }); target.forget(rel); dirMeta.delete(rel); }
    else await unlink(target.abs(rel));
  }

  /** Remove everything below rel that this layer did not write (opaque directory, apply mode). */
  async function purgeLower(rel: string): Promise<void> {
    for (const name of await readdir(target.abs(rel))) {
      const child = rel === '' ? name : rel + '/' + name;
      const st = await lstat(target.abs(child));
      if (!written.has(child)) await removeAt(child, st.isDirectory());
      else if (st.isDirectory()) await purgeLower(child);
    }
  }

  async function applyMeta(rel: string, h: TarHeader, isSymlink: boolean): Promise<void> {
    const abs = target.abs(rel);
    // chown first: it clears setuid/setgid and security.capability, which come after.
    if (sameOwner) await lchown(abs, h.uid, h.gid);
    if (!isSymlink) await chmod(abs, h.mode & 0o7777);
    for (const [k, v] of Object.entries(h.xattrs)) {
      // overlay's own attributes (redirect, metacopy, opaque...) from a tar could make the
      // kernel look elsewhere: only markers translated here may set them.
      if (k.startsWith('trusted.overlay.')) continue;
      try { setXattr(abs, k, v); } catch (e) { if (!ignorableXattrError(e)) throw e; }
    }
    await lutimes(abs, h.mtime, h.mtime);
  }

  async function whiteout(rel: string, entry: string): Promise<void> {
    if (written.has(rel)) return; // the same layer also has the entry: it wins
    await target.parent(rel, entry);
    const st = await lstatOrUndefined(target.abs(rel));
    if (mode === 'apply') {
      if (st) await removeAt(rel, st.isDirectory());
      return;
    }
    if (st) await removeAt(rel, st.isDirectory());
    mknod(target.abs(rel), S_IFCHR, 0, 0, 0);
    if (sameOwner) await lchown(target.abs(rel), 0, 0);
  }

  async function opaque(rel: string, entry: string): Promise<void> {
    if (rel === '') throw hostile(entry, 'opaque marker at the layer root');
    await target.ensureDir(rel, entry);
    if (mode === 'apply') { await purgeLower(rel); return; }
    setXattr(target.abs(rel), OPAQUE_XATTR, Buffer.from('y'));
  }

  async function writeFile(rel: string, h: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    // O_EXCL|O_NOFOLLOW: the name was just cleared, so anything there now is not ours to follow.
    const fh = await open(target.abs(rel), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    try {
      for await (const b of body) {
        let off = 0;
        while (off < b.length) off += (await fh.write(b, off, b.length - off)).bytesWritten;
      }
    } finally {
      await fh.close();
    }
  }

  async function entry(h: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    const name = h.name;
    const rel = cleanPath(name);
    const base = baseOf(rel);
    for (const comp of parentOf(rel).split('/')) if (comp.startsWith(WH)) throw hostile(name, 'whiteout marker used as a directory');

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

    if ((h.type === 'char' || h.type === 'block') && !opts.allowDevices) throw hostile(name, `${h.type} device entries are not allowed`);
    await target.parent(rel, name);
    const abs = target.abs(rel);

    // Hardlink source is resolved before anything at rel is removed (a link to itself is refused).
    let linkSource: string | undefined;
    if (h.type === 'hardlink') {
      const src = cleanPath(h.linkname, name);
      if (src === '') throw hostile(name, 'hardlink to the root');
      if (src === rel) throw hostile(name, 'hardlink to itself');
      for (const comp of src.split('/')) if (comp.startsWith(WH)) throw hostile(name, 'hardlink to a whiteout marker');
      await target.parent(src, name);
      const st = await lstatOrUndefined(target.abs(src));
      if (!st) throw hostile(name, `hardlink to ${JSON.stringify(h.linkname)}, which is not in the layer`);
      if (st.isDirectory()) throw hostile(name, 'hardlink to a directory');
      if (mode === 'overlay' && st.isCharacterDevice() && st.rdev === 0 && !written.has(src)) throw hostile(name, 'hardlink to a whiteout');
      linkSource = target.abs(src);
    }

    const existing = await lstatOrUndefined(abs);
    if (existing) {
      if (existing.isDirectory() && h.type === 'directory') { /* merge: metadata below */ }
      else await removeAt(rel, existing.isDirectory());
    }

    switch (h.type) {
      case 'directory':
        if (!existing || !existing.isDirectory()) await mkdir(abs, { mode: 0o700 });
        target.markDir(rel);
        written.add(rel);
        dirMeta.set(rel, h);
        return;
      case 'file':
        await writeFile(rel, h, body);
        break;
      case 'symlink':
        // The target text is not checked: a symlink is never followed by this code.
        await symlink(h.linkname, abs);
        break;
      case 'hardlink':
        // link(2) does not follow a symlink source: it links the symlink itself.
        await link(linkSource!, abs);
        written.add(rel);
        return; // shares the source's inode and metadata
      case 'fifo':
        mknod(abs, S_IFIFO, 0o600);
        break;
      case 'char':
      case 'block':
        mknod(abs, h.type === 'char' ? S_IFCHR : S_IFBLK, 0o600, h.devmajor, h.devminor);
        break;
    }
    written.add(rel);
    await applyMeta(rel, h, h.type === 'symlink');
  }

  try {
    for await (const { header, body } of readTar(hashed(decompress(stream as AsyncIterable<Buffer>, mediaType)))) {
      entries++;
      await entry(header, body);
    }
  } catch (e) {
    if (e instanceof TarUnsupportedError) throw hostile(e.entry, e.message);
    if (e instanceof TarFormatError) throw new StoreError('corrupt', `layer tar: ${e.message}`);
    if ((e as { code?: string }).code === 'Z_DATA_ERROR' || (e as { code?: string }).code === 'Z_BUF_ERROR') throw new StoreError('corrupt', `layer compression: ${(e as Error).message}`);
    throw e;
  }

  // Directories last, deepest first: their mtimes are not disturbed by children any more.
  const dirs = [...dirMeta.keys()].sort((a, b) => b.length - a.length);
  for (const rel of dirs) await applyMeta(rel, dirMeta.get(rel)!, false);

  const diffID = `sha256:${hash.digest('hex')}` as Digest;
  if (opts.diffID && opts.diffID !== diffID) throw new StoreError('corrupt', `layer diffID is ${diffID}, expected ${opts.diffID}`, opts.diffID);
  return { diffID, entries };
}
