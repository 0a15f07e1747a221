// writeLayer: entries → tar → sha256 (diffID) → compressor → blob store, in one streamed pass.
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

  const hash = createHash('sha256');
  async function* hashed(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const b of src) {
      hash.update(b);
      yield b;
    }
  }

  const ingest = blobs.ingest();
  try {
    const pool = new ChunkPool(chunkSizeOf(compression));
    const tar = tarStream(entries, { pool });
    await pipeline(
      Readable.from(
        compress(hashed(tar), compression, (c) => pool.give(c)),
        { objectMode: false, highWaterMark: 4 },
      ),
      ingest,
    );
    const { digest, size } = await ingest.commit();
    return { digest, diffID: `sha256:${hash.digest('hex')}`, size, mediaType: mediaTypeOf(compression) };
  } catch (e) {
    await ingest.abort().catch(() => {});
    throw e;
  }
}
