// gzip for layers, in parallel and without compressing what does not compress.
//
// The tar is cut into fixed chunks and each chunk becomes one gzip member (as pigz does): every
// gzip reader accepts concatenated members, and the chunks compress on libuv's thread pool, on
// every core. A chunk that deflate would barely shrink (already-compressed files: images,
// archives, random data) is not compressed: it becomes a member of stored deflate blocks, which
// costs a CRC-32 and a copy instead of ~34 ms/MiB of zlib level 1 spent for nothing (measured
// here: level 1 runs at 29 MB/s on random data and ~750 MB/s on repetitive text).
//
// The output is a function of the tar bytes alone; the rule below is part of every layer digest,
// and changing any constant changes the digests of new layers (never the diffIDs):
// - chunks of GZIP_CHUNK bytes, the last one shorter;
// - a chunk of at least SAMPLE_MIN bytes is judged by its sample: SAMPLE_WINDOWS windows of
//   SAMPLE_WINDOW bytes at evenly spaced offsets (the first at 0, the last ending at the chunk's
//   end), concatenated and deflated raw at level 1. If that saves less than 1/STORE_BELOW_SAVING
//   of the sample, the chunk is stored; otherwise, and for shorter chunks, it is compressed;
// - a compressed chunk is zlib.gzip at GZIP_LEVEL (node's fixed header 1f8b 08 00 00000000 04 03);
// - a stored chunk has the same 10-byte header, stored blocks of STORED_BLOCK bytes (the last one
//   shorter, with BFINAL set), then CRC-32 and ISIZE, both little-endian.
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

// Made on first use: zlib is loaded only by a command that compresses (the CLI's bundle loads node:zlib lazily).
const gzipAsync = (buf: Buffer, o: zlib.ZlibOptions): Promise<Buffer> => promisify(zlib.gzip)(buf, o);
const deflateRawAsync = (buf: Buffer, o: zlib.ZlibOptions): Promise<Buffer> => promisify(zlib.deflateRaw)(buf, o);

export const GZIP_CHUNK = 1 << 20;
export const GZIP_LEVEL = 1;
export const SAMPLE_WINDOWS = 8;
export const SAMPLE_WINDOW = 4096;
export const SAMPLE_MIN = 64 * 1024;
export const STORE_BELOW_SAVING = 16;
export const STORED_BLOCK = 65535;

const HEADER = Buffer.from('1f8b0800000000000403', 'hex');

/** Re-cut a byte stream into chunks of exactly `size` bytes (the last may be shorter). */
export async function* rechunk(src: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  // A piece that already is a whole chunk passes through uncopied (the tar writer aligns its
  // file reads to chunk boundaries for that); pieces are never written to after they are yielded.
  let parts: Buffer[] = [];
  let have = 0;
  for await (let b of src) {
    while (have + b.length >= size) {
      const take = size - have;
      parts.push(b.subarray(0, take));
      yield parts.length === 1 ? parts[0] : Buffer.concat(parts, size);
      parts = [];
      have = 0;
      b = b.subarray(take);
    }
    if (b.length) {
      parts.push(b);
      have += b.length;
    }
  }
  if (have) yield parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
}

/** The windows deflate is tried on to judge a chunk (see the rule above). */
export function sampleOf(chunk: Buffer): Buffer {
  const out = Buffer.allocUnsafe(SAMPLE_WINDOWS * SAMPLE_WINDOW);
  const span = chunk.length - SAMPLE_WINDOW;
  for (let i = 0; i < SAMPLE_WINDOWS; i++) {
    const at = Math.floor((i * span) / (SAMPLE_WINDOWS - 1));
    chunk.copy(out, i * SAMPLE_WINDOW, at, at + SAMPLE_WINDOW);
  }
  return out;
}

// zlib's output buffers: each time one fills, the pool job returns to the main thread for another
// (node's default of 16 KiB meant ~25 round trips per compressed 1 MiB chunk). A sample fits in
// one; for chunks, 64 KiB stays below malloc's mmap threshold: a fresh 1 MiB buffer per chunk
// costs more in page faults, on this kind of VM, than the round trips it saves. Output bytes do
// not depend on it.
const SAMPLE_OUTPUT = SAMPLE_WINDOWS * SAMPLE_WINDOW + 1024;
const CHUNK_OUTPUT = 64 * 1024;

/** Whether a chunk is stored rather than compressed; deflates its sample on the thread pool. */
export async function storesChunk(chunk: Buffer): Promise<boolean> {
  if (chunk.length < SAMPLE_MIN) return false;
  const sample = sampleOf(chunk);
  const deflated = await deflateRawAsync(sample, { level: 1, chunkSize: SAMPLE_OUTPUT });
  return (sample.length - deflated.length) * STORE_BELOW_SAVING < sample.length;
}

/** One gzip member holding `chunk` in stored deflate blocks. */
export function storedMember(chunk: Buffer): Buffer {
  const blocks = Math.max(1, Math.ceil(chunk.length / STORED_BLOCK));
  const out = Buffer.allocUnsafe(HEADER.length + blocks * 5 + chunk.length + 8);
  let o = HEADER.copy(out, 0);
  for (let at = 0, i = 0; i < blocks; i++, at += STORED_BLOCK) {
    const len = Math.min(STORED_BLOCK, chunk.length - at);
    out[o] = i === blocks - 1 ? 1 : 0;
    out.writeUInt16LE(len, o + 1);
    out.writeUInt16LE(~len & 0xffff, o + 3);
    o += 5;
    o += chunk.copy(out, o, at, at + len);
  }
  out.writeUInt32LE(zlib.crc32(chunk), o);
  out.writeUInt32LE(chunk.length % 0x1_0000_0000, o + 4);
  return out;
}

async function member(chunk: Buffer, level: number, adaptive: boolean): Promise<Buffer> {
  if (adaptive && (await storesChunk(chunk))) return storedMember(chunk);
  return gzipAsync(chunk, { level, chunkSize: CHUNK_OUTPUT });
}

export interface GzipOptions {
  level?: number;
  chunk?: number;
  /** Chunks in flight at once. */
  depth?: number;
  /** Store chunks that do not compress (the default; false compresses every chunk). */
  adaptive?: boolean;
  /** Where input chunks go once their member is made (the tar writer reads into them again). */
  recycle?: (chunk: Buffer) => void;
}

/**
 * Parallel gzip. At most `depth` chunks are in flight: one fewer than libuv's pool (4 by
 * default) so file reads of the tar source still get a thread, and never more than the cores.
 */
export async function* gzipChunks(src: AsyncIterable<Buffer>, opts: GzipOptions = {}): AsyncGenerator<Buffer> {
  const level = opts.level ?? GZIP_LEVEL;
  const adaptive = opts.adaptive ?? true;
  const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  const depth = opts.depth ?? Math.max(1, Math.min(availableParallelism() + 1, pool - 1));
  const inFlight: Promise<Buffer>[] = [];
  try {
    for await (const chunk of rechunk(src, opts.chunk ?? GZIP_CHUNK)) {
      const p = member(chunk, level, adaptive);
      if (opts.recycle)
        void p.then(
          () => opts.recycle!(chunk),
          () => {},
        );
      p.catch(() => {}); // observed when awaited; avoid an unhandled rejection while queued
      inFlight.push(p);
      if (inFlight.length >= depth) yield await inFlight.shift()!;
    }
    while (inFlight.length) yield await inFlight.shift()!;
  } finally {
    inFlight.length = 0;
  }
}
