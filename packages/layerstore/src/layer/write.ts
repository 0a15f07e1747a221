// writeLayer: entries → tar → sha256 (diffID) → compressor → blob store, in one streamed pass.
// Uncompressed (a build's layers), the diffID is the blob's own digest, hashed once by the ingest.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobStore, Entry, Layer, LayerOptions } from '../types.js';
import { chunkSizeOf, compress, mediaTypeOf } from './compress.js';
import { entriesFromDirectory } from './entries.js';
import { ChunkPool, tarStream } from './tar-writer.js';

export interface WriteLayerOptions extends LayerOptions {
  /** For a directory source: it is an overlay upperdir whose markers become OCI whiteouts. */
  overlay?: boolean;
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
  async function* hashed(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const b of src) {
      hash!.update(b);
      yield b;
    }
  }

  const ingest = blobs.ingest();
  try {
    const pool = new ChunkPool(chunkSizeOf(compression));
    const tar = tarStream(entries, { pool });
    await pipeline(
      Readable.from(
        compress(hash ? hashed(tar) : tar, compression, (c) => pool.give(c)),
        { objectMode: false, highWaterMark: 4 },
      ),
      ingest,
    );
    const { digest, size } = await ingest.commit();
    const diffID = hash ? (`sha256:${hash.digest('hex')}` as const) : digest;
    return { digest, diffID, size, mediaType: mediaTypeOf(compression) };
  } catch (e) {
    await ingest.abort().catch(() => {});
    throw e;
  }
}
