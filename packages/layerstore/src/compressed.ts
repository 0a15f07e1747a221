// Deferred compression. A build stores each new layer as its uncompressed tar: the blob's digest is
// its diffID, hashed while the tar is written, at the speed of `tar | sha256sum`. The compressed
// blob is made when an image leaves the store (push, an OCI layout or archive, `save`, a shared
// cache), and remembered: a cache record maps (diffID, codec) to the compressed blob, which is kept
// in the store, so the second push or export of a layer compresses nothing.
//
// Why the uncompressed tar is a blob (and not the snapshot plus a recorded diffID): blobs are
// durable (temp file, verify, fsync, rename) while snapshots are not (RUN overlays are mounted
// volatile, and a snapshot from an earlier boot is unpacked again from its blob). So a build
// killed at any point, or a machine that lost power, still leaves every recorded layer whole, and
// the store stays a plain OCI layout whose images, tags and cache records name ordinary blobs.
//
// Determinism: the compressed bytes are a function of the tar alone (layer/gzip.ts pins gzip's
// chunking, level and stored-chunk rule on node's bundled zlib; zstd is the CLI at level 3), so
// the same layer compresses to the same blob in any store and a pushed manifest's digest is
// reproducible. The codec id below is part of the record key: a change of the rule is a new id.
//
// Forced compression (BuildKit's force-compression=true): a layer the store holds compressed otherwise
// (a pulled gzip base layer, with zstd asked) is decompressed, checked against its diffID, and compressed
// again, streamed. The result is the same function of the tar, so it is remembered under the same key
// as a layer compressed from the uncompressed tar. A compression level is part of the codec id: the same
// layer at another level is another blob, and a push at one level never reuses the blob of another.
import { createReadStream } from 'node:fs';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import {
  MediaType,
  StoreError,
  type BlobStore,
  type Compression,
  type Digest,
  type Image,
  type Ingest,
  type Layer,
  type Manifest,
} from './types.js';
import { layerCompression, layerMediaType } from './image-read.js';
import { compress, decompress, mediaTypeOf } from './layer/compress.js';
import { GZIP_CHUNK, GZIP_LEVEL } from './layer/gzip.js';
import { isDigest, sha256 } from './digest.js';
import type { Store } from './store.js';
import type { LayerCodec } from './remote/push.js';

/** How layers leave the store besides their compression: BuildKit's compression-level and force-compression. */
export interface CompressOptions {
  /** gzip 0-9, zstd 0-22 (0: zstd's default); unset: GZIP_LEVEL, ZSTD_LEVEL. */
  level?: number;
  /** Also recompress a layer the store holds in another compression (a pulled one), not only uncompressed ones. */
  force?: boolean;
}

export const ZSTD_LEVEL = 3;

/** The level a compressor runs at: zstd's level 0 is its default level, as in the zstd library. */
export function effectiveLevel(c: Compression, level: number | undefined): number {
  if (c === 'gzip') return level ?? GZIP_LEVEL;
  return level === undefined || level === 0 ? ZSTD_LEVEL : level;
}

/** The compressor a record was made with; part of its key (the defaults' ids are those records were made with). */
export function codecId(c: Compression, level?: number): string {
  if (c === 'none') return 'uncompressed';
  if (c === 'gzip') return `gzip-parallel level=${effectiveLevel(c, level)} chunk=${GZIP_CHUNK} adaptive v1`;
  return `zstd-cli -${effectiveLevel(c, level)}`;
}

/**
 * Whether pushing or exporting `layer` with compression `c` needs a blob made: an uncompressed layer when `c`
 * compresses; with `force`, any layer not already in `c` (uncompressed included: a compressed layer decompressed).
 */
export function needsCompression(layer: Pick<Layer, 'mediaType'>, c: Compression, force = false): boolean {
  const has = layerCompression(layer.mediaType);
  if (force) return has !== (c === 'none' ? 'tar' : c);
  return c !== 'none' && has === 'tar';
}

/** The cache-record key of (diffID, codec). */
export function compressedKey(diffID: Digest, c: Compression, level?: number): Digest {
  return sha256(`tsbuild compressed layer\n${diffID}\n${codecId(c, level)}`);
}

interface CompressedRecord {
  kind: 'compressed-layer';
  diffID: Digest;
  compression: Compression;
  digest: Digest;
  size: number;
  mediaType: string;
}

/** The compressed blob of `layer` made before, if its record and blob are in the store. */
export async function knownCompressed(
  store: Store,
  layer: Layer,
  c: Compression,
  level?: number,
): Promise<Layer | undefined> {
  const rec = await store.cache.get(compressedKey(layer.diffID, c, level));
  const v = rec?.value as Partial<CompressedRecord> | undefined;
  if (v?.kind !== 'compressed-layer' || v.diffID !== layer.diffID || !isDigest(v.digest)) return undefined;
  if (typeof v.size !== 'number') return undefined;
  // store.cache.get leased the blob; a pruned one means compressing again.
  if ((await store.blobs.size(v.digest)) !== v.size) return undefined;
  return { digest: v.digest, size: v.size, mediaType: mediaTypeOf(c), diffID: layer.diffID };
}

async function remember(store: Store, made: Layer, c: Compression, level?: number): Promise<void> {
  const value: CompressedRecord = { kind: 'compressed-layer', compression: c, ...made };
  await store.cache.put(compressedKey(made.diffID, c, level), { value, blobs: [made.digest] });
}

/** The blob's bytes, checked against its digest and size: the last piece only after they match. */
async function* verifiedBlob(blobs: BlobStore & { path(d: Digest): string }, layer: Layer): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  let size = 0;
  let held: Buffer | undefined;
  try {
    for await (const b of createReadStream(blobs.path(layer.digest), { highWaterMark: GZIP_CHUNK })) {
      if (held) yield held;
      held = b as Buffer;
      hash.update(held);
      size += held.length;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new StoreError('not-found', `layer blob ${layer.digest} is not in the store`, layer.digest);
    throw e;
  }
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== layer.digest || size !== layer.size)
    throw new StoreError(
      'corrupt',
      `layer blob ${layer.digest} is corrupt (${size} bytes hashing to ${got}): remove it and rebuild`,
      layer.digest,
    );
  if (held) yield held;
}

/**
 * The layer's tar: its blob if the store holds it uncompressed, else its blob decompressed (forced
 * compression) and checked against its diffID, the last piece only after it matches, so that a layer
 * whose content is not what its image says never leaves as a blob made from it.
 */
async function* layerTar(blobs: BlobStore & { path(d: Digest): string }, layer: Layer): AsyncGenerator<Buffer> {
  if (layerCompression(layer.mediaType) === 'tar') {
    yield* verifiedBlob(blobs, layer);
    return;
  }
  const hash = createHash('sha256');
  let held: Buffer | undefined;
  for await (const b of decompress(verifiedBlob(blobs, layer), layer.mediaType)) {
    if (held) yield held;
    held = b;
    hash.update(held);
  }
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== layer.diffID)
    throw new StoreError(
      'corrupt',
      `layer blob ${layer.digest} decompresses to ${got}, not its diffID ${layer.diffID}: remove it and pull again`,
      layer.digest,
    );
  if (held) yield held;
}

async function writeTo(ingest: Ingest, b: Buffer): Promise<void> {
  if (!ingest.write(b)) await once(ingest as unknown as NodeJS.EventEmitter, 'drain');
}

/**
 * For tests (test/deferred-compression.test.ts): with TSBUILD_TEST_COMPRESS_GATE=FILE, compression
 * stops after its first piece went into the store's temp file, creates FILE.waiting and waits for
 * FILE to exist; a test kills the process there, mid-compression, at a point it knows.
 */
async function compressGate(): Promise<void> {
  const gate = process.env.TSBUILD_TEST_COMPRESS_GATE;
  if (!gate) return;
  writeFileSync(`${gate}.waiting`, String(process.pid));
  while (!existsSync(gate)) await new Promise((r) => setTimeout(r, 20));
}

/** A layer being compressed: the pieces as they are made, and the blob once the last piece was taken. */
export interface CompressedStream {
  pieces: AsyncIterable<Buffer>;
  /**
   * The compressed blob's digest and size, once the last piece was taken: what a streamed upload
   * needs to close, while the store is still committing the blob (fsync, rename, record).
   */
  written: Promise<{ digest: Digest; size: number }>;
  /** Resolves once the blob is committed to the store and remembered. */
  done: Promise<Layer>;
}

/**
 * Compress a layer of the store (uncompressed; or, forced, compressed otherwise). The pieces go
 * into a store ingest as they pass (temp file, then verify, fsync, rename once the last one has
 * been taken: in the background, so that the pieces end, and an upload of them can close, without
 * waiting for the disk), so whoever consumes them (an upload) gets the blob remembered too; a
 * consumer that stops early leaves nothing.
 */
export function compressLayer(store: Store, layer: Layer, c: Compression, level?: number): CompressedStream {
  const done = deferred<Layer>();
  const written = deferred<{ digest: Digest; size: number }>();
  async function* run(): AsyncGenerator<Buffer> {
    const ingest = store.blobs.ingest();
    let handedOff = false;
    let first = true;
    try {
      for await (const piece of compress(layerTar(store.blobs, layer), c, undefined, effectiveLevel(c, level))) {
        await writeTo(ingest, piece);
        if (first) await compressGate();
        first = false;
        yield piece;
      }
      if (ingest.digest) written.resolve(await ingest.digest());
      handedOff = true;
      const finishing = (async () => {
        const { digest, size } = await ingest.commit();
        written.resolve({ digest, size });
        const made: Layer = { digest, size, mediaType: mediaTypeOf(c), diffID: layer.diffID };
        await remember(store, made, c, level);
        return made;
      })();
      finishing.then(done.resolve, (e: unknown) => {
        written.reject(e);
        done.reject(e);
      });
    } catch (e) {
      written.reject(e);
      done.reject(e);
      throw e;
    } finally {
      if (!handedOff) {
        await ingest.abort().catch(() => {});
        const stopped = new StoreError('io', `compressing layer ${layer.diffID} stopped before its end`);
        written.reject(stopped);
        done.reject(stopped);
      }
    }
  }
  return { pieces: run(), written: written.promise, done: done.promise };
}

/** A promise with its settle functions; settling again is a no-op; a rejection nobody awaits is not unhandled. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** The compressed blob of `layer` in the store: the one made before, or made now. */
export async function materialiseLayer(
  store: Store,
  layer: Layer,
  c: Compression,
  o: CompressOptions = {},
): Promise<{ layer: Layer; compressed: boolean }> {
  if (!needsCompression(layer, c, o.force)) return { layer, compressed: false };
  const known = await knownCompressed(store, layer, c, o.level);
  if (known) return { layer: known, compressed: false };
  const s = compressLayer(store, layer, c, o.level);
  for await (const _ of s.pieces); // drained: the ingest takes every piece
  return { layer: await s.done, compressed: true };
}

/**
 * The manifest of `image` with its layers replaced by `layers` (same diffIDs, in order), in the
 * image's own format; the bytes are what is pushed or exported. Same input, same bytes.
 */
export function manifestWithLayers(image: Image, layers: Layer[]): { manifest: Manifest; bytes: Buffer } {
  const format = image.manifest.mediaType === MediaType.DockerManifest ? 'docker' : 'oci';
  const manifest: Manifest = {
    ...image.manifest,
    layers: image.manifest.layers.map((d, i) => {
      const l = layers[i];
      if (l.diffID !== image.layers[i].diffID) throw new Error(`layer ${i + 1} does not match the image's diffID`);
      return { ...d, mediaType: layerMediaType(l.mediaType, format), digest: l.digest, size: l.size };
    }),
  };
  return { manifest, bytes: Buffer.from(JSON.stringify(manifest)) };
}

/**
 * `image` as it leaves the store with compression `c`: uncompressed layers compressed (or found
 * compressed before), the others as they are, and a manifest naming them, written to the store.
 * The config, hence the image id, is the same. An image with nothing to compress is returned as is.
 */
export async function compressedImage(
  store: Store,
  image: Image,
  c: Compression,
  o: CompressOptions = {},
): Promise<{ image: Image; compressed: number }> {
  if (!image.layers.some((l) => needsCompression(l, c, o.force))) return { image, compressed: 0 };
  const layers: Layer[] = [];
  let compressed = 0;
  for (const l of image.layers) {
    const m = await materialiseLayer(store, l, c, o);
    layers.push(m.layer);
    if (m.compressed) compressed++;
  }
  const { manifest, bytes } = manifestWithLayers(image, layers);
  const { digest } = await store.blobs.put(bytes);
  const named = layers.map((l, i) => ({ ...l, mediaType: manifest.layers[i].mediaType }));
  return { image: { ...image, manifestDigest: digest, manifest, layers: named }, compressed };
}

/** What remote.push needs to compress layers of this store as they go up, at `o`'s level, forced or not. */
export function layerCodec(store: Store, o: CompressOptions = {}): LayerCodec {
  return {
    variant: `level=${o.level ?? ''} force=${o.force === true}`,
    needsCompression: (layer, c) => needsCompression(layer, c, o.force),
    known: (layer, c) => knownCompressed(store, layer, c, o.level),
    stream: (layer, c) => compressLayer(store, layer, c, o.level),
    materialise: (layer, c) => materialiseLayer(store, layer, c, o),
    manifest: manifestWithLayers,
  };
}

/** The cache-record key of a compressed blob's uncompressed size. */
function unpackedSizeKey(digest: Digest): Digest {
  return sha256(`tsbuild uncompressed layer size\n${digest}`);
}

/**
 * Each layer's uncompressed size (its tar's bytes), what docker shows for an image whatever its layers were
 * pulled or loaded as. A built layer is kept uncompressed: its blob's size. A compressed one (pulled, loaded)
 * is decompressed once and its size remembered in a record (naming no blob: it keeps nothing from prune); a
 * blob that cannot be read counts as stored, and the image is reported broken elsewhere.
 */
export async function unpackedLayerSizes(store: Store, layers: Layer[]): Promise<number[]> {
  const out: number[] = [];
  for (const layer of layers) {
    if (layerCompression(layer.mediaType) === 'tar') {
      out.push(layer.size);
      continue;
    }
    const key = unpackedSizeKey(layer.digest);
    const v = (await store.cache.get(key))?.value as { kind?: string; digest?: string; size?: unknown } | undefined;
    if (v?.kind === 'unpacked-size' && v.digest === layer.digest && typeof v.size === 'number') {
      out.push(v.size);
      continue;
    }
    let size = 0;
    try {
      for await (const b of decompress(store.blobs.open(layer.digest), layer.mediaType)) size += b.length;
    } catch {
      out.push(layer.size);
      continue;
    }
    // Kept to spare the next listing the decompression; a store this process may not write (another user's,
    // read-only) still lists, counting again next time. `prune --all` drops these records with the others.
    await store.cache
      .put(key, { value: { kind: 'unpacked-size', digest: layer.digest, size }, blobs: [] })
      .catch(() => undefined);
    out.push(size);
  }
  return out;
}
