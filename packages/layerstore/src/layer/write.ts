// writeLayer: entries → tar → sha256 (diffID) → compressor → blob store, in one streamed pass.
// Uncompressed (a build's layers), the diffID is the blob's own digest, hashed once by the ingest.
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type { BlobStore, Compression, Entry, Ingest, Layer, LayerOptions } from '../types.js';
import { chunkSizeOf, compress, mediaTypeOf } from './compress.js';
import { entriesFromDirectory } from './entries.js';
import { ChunkPool, tarStream } from './tar-writer.js';

export interface WriteLayerOptions extends LayerOptions {
  /** For a directory source: it is an overlay upperdir whose markers become OCI whiteouts. */
  overlay?: boolean;
  /**
   * Called with the layer's size once all of it is in its temp file, before the fsync, rename and directory
   * fsync that make it a blob (the returned promise): a caller that writes layers one at a time may start the
   * next one then, so that small layers' syncs overlap (the builder's LayerQueue). Nothing may name the blob
   * before the promise resolves.
   */
  written?: (size: number) => void;
}

async function* clampMtimes(entries: AsyncIterable<Entry> | Iterable<Entry>, sde: number): AsyncGenerator<Entry> {
  for await (const e of entries) yield e.mtime > sde ? { ...e, mtime: sde } : e;
}

export async function writeLayer(
  blobs: BlobStore,
  source: AsyncIterable<Entry> | Iterable<Entry> | string,
  opts: WriteLayerOptions = {},
): Promise<Layer> {
  const compression = opts.compression ?? 'gzip';
  let entries: AsyncIterable<Entry> | Iterable<Entry> =
    typeof source === 'string'
      ? entriesFromDirectory(source, { overlay: opts.overlay, sourceDateEpoch: opts.sourceDateEpoch })
      : source;
  if (typeof source !== 'string' && opts.sourceDateEpoch !== undefined)
    entries = clampMtimes(entries, opts.sourceDateEpoch);

  // Uncompressed, the blob is the tar itself: the store's ingest hashes it on its way to disk, and
  // that digest is the diffID. Hashing it a second time here cost 0.35 s of CPU per 500 MB.
  const hash = compression === 'none' ? undefined : createHash('sha256');

  const ingest = blobs.ingest();
  try {
    await fill(ingest, entries, compression, hash);
    // The tar's chunks are out of reach here: a layer waiting for its fsync holds an fd and a hash, no buffers.
    if (opts.written && ingest.digest) opts.written((await ingest.digest()).size);
    const { digest, size } = await ingest.commit();
    const diffID = hash ? (`sha256:${hash.digest('hex')}` as const) : digest;
    return { digest, diffID, size, mediaType: mediaTypeOf(compression) };
  } catch (e) {
    await ingest.abort().catch(() => {});
    throw e;
  }
}

/** The layer's tar (compressed, `hash` its diffID, unless `compression` is none) into `ingest`, uncommitted. */
async function fill(
  ingest: Ingest,
  entries: AsyncIterable<Entry> | Iterable<Entry>,
  compression: Compression,
  hash: Hash | undefined,
): Promise<void> {
  async function* hashed(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const b of src) {
      hash!.update(b);
      yield b;
    }
  }
  // Uncompressed, the chunks are shared memory: a large layer is hashed on another thread (writeRecycling).
  const pool = new ChunkPool(chunkSizeOf(compression), undefined, !hash);
  const tar = tarStream(entries, { pool });
  if (hash)
    await pipeline(
      Readable.from(
        compress(hashed(tar), compression, (c) => pool.give(c)),
        { objectMode: false, highWaterMark: 4 },
      ),
      ingest,
    );
  else await writeRecycling(tar, ingest, pool);
}

/**
 * The tar's chunks straight into the ingest, each handed back to the pool once the ingest has written
 * it (Ingest: a write's callback means its chunk is no longer used), so the tar writer refills memory
 * already mapped: fresh chunks cost 18,000 page faults and 16 % of the CPU for a 524 MB layer.
 */
async function writeRecycling(src: AsyncIterable<Buffer>, ingest: Ingest, pool: ChunkPool): Promise<void> {
  let failure: Error | undefined;
  // Kept for the ingest's life: a write still under way when the tar fails may fail after this returns.
  ingest.on('error', (e: Error) => {
    failure ??= e;
  });
  let first = true;
  for await (const chunk of src) {
    if (failure) throw failure;
    // A whole first chunk means a layer of a chunk or more: hashed on a worker thread while this one tars the
    // rest (a thread costs more than it saves on a small layer, whose only chunk is short).
    if (first && chunk.length === pool.size) ingest.hashOnThread?.();
    first = false;
    const more = ingest.write(chunk, (e) => {
      if (!e) pool.give(chunk);
    });
    // once() rejects if the ingest fails while we wait.
    if (!more) await once(ingest, 'drain');
    // A turn of the event loop per chunk: the tar writer reads files synchronously, and while the disk keeps up
    // the loop above never waited for anything, so the build's other steps (the next COPY's few fs calls, a RUN
    // starting its container) stood still until the whole layer was written. A chunk is ~1 MiB of work.
    else await new Promise<void>((resolve) => setImmediate(resolve));
  }
  // As pipeline() would: the end, and the last write done (or its failure) before commit().
  ingest.end();
  await finished(ingest);
}
