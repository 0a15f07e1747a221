// Entries → tar bytes, as an async generator so the consumer's pace (hashing, compression,
// the blob store's disk) is the only thing that pulls file content: memory stays flat.
//
// The bytes come out in chunks of a fixed size (the compressor's), filled in place: headers are
// copied in and a host file's content is read with readSync straight into the chunk. So there
// is no buffer per read or per file, no re-cutting copy in the compressor, and one hash update
// per chunk; for 20,000 small files those per-piece costs were most of the main thread's time.
import { closeSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Entry } from '../types.js';
import { BLOCK, encodeHeader, padding, type TarHeader } from './tar-header.js';
import { HOST_FILE, HOST_INO, HOST_ROOT, LIVE_FILE, openContent } from './entries.js';
import { BeneathReader } from './read-beneath.js';

/** The chunk size when the caller does not name one. */
export const TAR_CHUNK = 1 << 20;

/** Two zero blocks end the archive. */
const END_OF_ARCHIVE = 1024;

function dirname(p: string): string {
  const i = p.lastIndexOf('/');
  return i === -1 ? '' : p.slice(0, i + 1);
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

const NO_XATTRS: Record<string, Buffer> = Object.freeze({});

function header(
  name: string,
  type: TarHeader['type'],
  e: Entry,
  xattrs: Record<string, Buffer>,
  size = 0,
  linkname = '',
  devmajor = 0,
  devminor = 0,
): TarHeader {
  // One object shape for every entry (no spreads): this runs once per file of a layer.
  return {
    name,
    type,
    mode: e.mode & 0o7777,
    uid: e.uid,
    gid: e.gid,
    size,
    mtime: Math.floor(e.mtime),
    linkname,
    devmajor,
    devminor,
    xattrs,
  };
}

/** How one Entry is spelled in a tar: whiteouts and opaque markers become OCI `.wh.` files. */
export function headerOf(e: Entry): TarHeader {
  const xattrs = e.xattrs ?? NO_XATTRS;
  switch (e.type) {
    case 'whiteout':
      return header(dirname(e.path) + '.wh.' + basename(e.path), 'file', e, NO_XATTRS);
    case 'opaque':
      return header((e.path === '' ? '' : e.path.replace(/\/$/, '') + '/') + '.wh..wh..opq', 'file', e, NO_XATTRS);
    case 'file':
      return header(e.path, 'file', e, xattrs, e.size ?? 0);
    case 'directory':
      return header(e.path, 'directory', e, xattrs);
    case 'symlink':
      return header(e.path, 'symlink', e, xattrs, 0, e.linkname ?? '');
    case 'hardlink':
      return header(e.path, 'hardlink', e, xattrs, 0, e.linkname ?? '');
    case 'fifo':
      return header(e.path, 'fifo', e, xattrs);
    case 'char':
    case 'block':
      return header(e.path, e.type, e, xattrs, 0, '', e.devmajor ?? 0, e.devminor ?? 0);
  }
}

/**
 * Chunk buffers handed back by the consumer once it is done with them (the compressor, when a
 * chunk's member is made), so that the tar writer reads into memory that is already mapped:
 * on this kind of VM, faulting in fresh pages costs more than the page-cache copy itself.
 */
export class ChunkPool {
  private readonly free: Buffer[] = [];
  /** @param shared chunks in shared memory, which a worker thread reads where they are (an ingest's ThreadHash) */
  constructor(
    readonly size: number,
    private readonly max = 8,
    private readonly shared = false,
  ) {}

  take(): Buffer {
    const b = this.free.pop();
    if (b) return b;
    return this.shared ? Buffer.from(new SharedArrayBuffer(this.size)) : Buffer.allocUnsafe(this.size);
  }

  /** Only whole chunks of this pool's size, which nothing else refers to any more. */
  give(b: Buffer): void {
    if (
      b.length === this.size &&
      b.byteOffset === 0 &&
      b.buffer.byteLength === this.size &&
      this.free.length < this.max
    )
      this.free.push(b);
  }
}

/**
 * The tar stream of entries, in the order given, as chunks of exactly `chunk` bytes (the last
 * one shorter). A yielded chunk stays as it is until the consumer gives it back to `pool`, and
 * is then refilled: with a pool, exactly one consumer may hold the chunks, and it must be done
 * with a chunk (and anything that reads it) before giving it back. A file whose content differs
 * in length from its size fails.
 */
export async function* tarStream(
  entries: AsyncIterable<Entry> | Iterable<Entry>,
  opts: { chunk?: number; pool?: ChunkPool } = {},
): AsyncGenerator<Buffer> {
  const pool = opts.pool ?? new ChunkPool(opts.chunk ?? TAR_CHUNK, 0);
  const size = pool.size;
  let cur = pool.take();
  let off = 0;
  const probe = Buffer.allocUnsafe(1);
  // One block that each single-block header is encoded in, and copied out of at once (put).
  const scratch = Buffer.alloc(BLOCK);
  function* put(b: Buffer): Generator<Buffer> {
    for (let at = 0; at < b.length;) {
      const n = b.copy(cur, off, at);
      at += n;
      off += n;
      if (off === size) {
        yield cur;
        cur = pool.take();
        off = 0;
      }
    }
  }
  function* zeros(n: number): Generator<Buffer> {
    while (n > 0) {
      const k = Math.min(n, size - off);
      cur.fill(0, off, off + k);
      off += k;
      n -= k;
      if (off === size) {
        yield cur;
        cur = pool.take();
        off = 0;
      }
    }
  }

  // Files of an untrusted tree (HOST_ROOT) are opened beneath its root's fd, directory by directory.
  const beneath = new BeneathReader();
  try {
    yield* body();
  } finally {
    beneath.close();
  }
  async function* body(): AsyncGenerator<Buffer> {
    for await (const e of entries) {
      const h = headerOf(e);
      yield* put(encodeHeader(h, scratch));
      if (e.type !== 'file' || h.size === 0) continue;
      const host = (e as { [HOST_FILE]?: string })[HOST_FILE];
      if (host !== undefined) {
        const ex = e as { [HOST_ROOT]?: string; [HOST_INO]?: bigint; [LIVE_FILE]?: true };
        const root = ex[HOST_ROOT];
        const fd =
          root !== undefined
            ? beneath.open(root, host, e.path, ex[HOST_INO])
            : openContent(host, e.path, ex[LIVE_FILE] === true);
        try {
          // Each read asks for one byte more than is left when the chunk has room for it: reading
          // past the size means the file grew, and a short last read saves a probe read at EOF.
          let atEnd = false;
          for (let left = h.size; left > 0;) {
            const n = readSync(fd, cur, off, Math.min(left + 1, size - off), null);
            if (n === 0)
              throw new Error(`${e.path}: file shrank while being read (${h.size - left} of ${h.size} bytes)`);
            if (n > left) throw new Error(`${e.path}: file grew while being read (expected ${h.size} bytes)`);
            atEnd = n === left && n < size - off;
            left -= n;
            off += n;
            if (off === size) {
              yield cur;
              cur = pool.take();
              off = 0;
            }
          }
          if (!atEnd && readSync(fd, probe, 0, 1, null) > 0)
            throw new Error(`${e.path}: file grew while being read (expected ${h.size} bytes)`);
        } finally {
          closeSync(fd);
        }
      } else {
        if (!e.open) throw new Error(`${e.path}: file entry without content`);
        let written = 0;
        const body: Readable = e.open();
        for await (const piece of body as AsyncIterable<Buffer>) {
          written += piece.length;
          if (written > h.size) {
            body.destroy();
            throw new Error(`${e.path}: file grew while being read (expected ${h.size} bytes)`);
          }
          yield* put(piece);
        }
        if (written !== h.size)
          throw new Error(`${e.path}: file shrank while being read (${written} of ${h.size} bytes)`);
      }
      yield* zeros(padding(h.size));
    }
    yield* zeros(END_OF_ARCHIVE);
    if (off > 0) yield cur.subarray(0, off);
  }
}
