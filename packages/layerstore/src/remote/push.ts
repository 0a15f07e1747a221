// Push: blobs first (layers and config in parallel), each skipped if the registry has
// it, mounted if it is known to be in another repository of the registry, else uploaded
// from the store as a stream; then the manifest with its exact bytes and content type.
import { MediaType } from '../types.js';
import type { BlobStore, Compression, Descriptor, Digest, Image, Layer, Manifest } from '../types.js';
import { parseReference, type Reference } from '../reference.js';
import { newStats, type TransferStats } from './blob.js';
import { uploadBlob, type UploadOptions } from './blob-upload.js';
import { uploadStream } from './stream-upload.js';
import { RegistryError } from './errors.js';
import { parseManifestBytes, putManifest, sha256 } from './manifest.js';
import { mapLimit } from './pool.js';
import { clientFor, type RemoteOptions } from './pull.js';
import type { RegistryClient } from './client.js';

export type PushSource =
  /** A manifest (or index) whose bytes are in the store. */
  | { manifestDigest: Digest }
  /** Manifest bytes held by the caller; the blobs it references must be in the store. */
  | { manifestBytes: Buffer; mediaType?: string }
  /**
   * An image of the store whose uncompressed layers are compressed with `compression` as they go
   * up (deferred compression, see compressed.ts): the manifest pushed names the compressed blobs.
   */
  | { image: Image; compression: Compression; codec: LayerCodec }
  /**
   * An index of the store whose entries in `images` (by manifest digest) go up as the `image` source
   * does, their layers compressed; the others byte for byte. The index pushed names what went up.
   */
  | { index: Digest; images: Map<Digest, Image>; compression: Compression; codec: LayerCodec };

/** How a push gets a layer compressed (compressed.ts, over a Store). */
export interface LayerCodec {
  needsCompression(layer: Layer, c: Compression): boolean;
  /** The compressed blob made before, if the store still has it. */
  known(layer: Layer, c: Compression): Promise<Layer | undefined>;
  /** Compress now: pieces as they are made (teed into the store), and the blob once the last was taken. */
  stream(layer: Layer, c: Compression): { pieces: AsyncIterable<Buffer>; done: Promise<Layer> };
  /** Compress into the store (or find it there), for a push from the store after a streamed upload failed. */
  materialise(layer: Layer, c: Compression): Promise<{ layer: Layer; compressed: boolean }>;
  /** The manifest of the image with these layers (compressedImage's). */
  manifest(image: Image, layers: Layer[]): { manifest: Manifest; bytes: Buffer };
}

export interface PushOptions extends RemoteOptions, Pick<UploadOptions, 'chunkThreshold' | 'chunkSize'> {
  /** Parallel blob uploads. Default 4. */
  concurrency?: number;
}

export interface PushResult {
  ref: Reference;
  /** Descriptor of the pushed manifest or index. */
  descriptor: Descriptor;
  stats: TransferStats;
}

const toRef = (r: string | Reference) => (typeof r === 'string' ? parseReference(r) : r);

/** Push an image (manifest or index) from the store to `reference` (its tag, or its digest if none). */
export async function push(
  blobs: BlobStore,
  source: PushSource,
  reference: string | Reference,
  opts: PushOptions = {},
): Promise<PushResult> {
  const ref = toRef(reference);
  const client = clientFor(ref, opts);
  const stats = newStats();
  if ('image' in source || 'index' in source) {
    const descriptor =
      'image' in source
        ? await pushImageLayers(client, blobs, ref, source, stats, opts)
        : await pushIndexLayers(client, blobs, ref, source, stats, opts);
    if (opts.locations) await opts.locations.save();
    return { ref, descriptor, stats };
  }
  const bytes = 'manifestDigest' in source ? await blobs.read(source.manifestDigest) : source.manifestBytes;
  const descriptor = await pushManifestTree(
    client,
    blobs,
    ref,
    bytes,
    'mediaType' in source ? source.mediaType : undefined,
    stats,
    opts,
    true,
  );
  if (opts.locations) await opts.locations.save();
  return { ref, descriptor, stats };
}

async function pushManifestTree(
  client: RegistryClient,
  blobs: BlobStore,
  ref: Reference,
  bytes: Buffer,
  mediaTypeHint: string | undefined,
  stats: TransferStats,
  opts: PushOptions,
  top: boolean,
): Promise<Descriptor> {
  let parsed;
  try {
    parsed = parseManifestBytes(bytes, mediaTypeHint);
  } catch (err) {
    throw new RegistryError(
      'invalid',
      `cannot push to ${ref.registry}/${ref.repository}: the manifest in the store is invalid ` +
        `(${(err as Error).message})`,
    );
  }
  const digest = sha256(bytes);
  // An artifact manifest may carry a mediaType field the parser normalised; keep an explicit hint.
  const mediaType = parsed.mediaType;
  if (parsed.index) {
    const index = parsed.index;
    for (const child of index.manifests) {
      await pushManifestTree(client, blobs, ref, await blobs.read(child.digest), child.mediaType, stats, opts, false);
    }
  } else {
    const manifest = parsed.manifest as Manifest;
    // The config goes up alongside the layers: only the manifest has to wait for its blobs, and
    // for a one-layer image a config pushed afterwards was three round trips in series.
    await pushBlobs(client, blobs, ref, [...manifest.layers, manifest.config], stats, opts);
  }
  const tag = top && ref.tag ? ref.tag : digest;
  if (top && ref.digest && ref.digest !== digest)
    throw new RegistryError('invalid', `cannot push ${digest} as ${ref.digest}`);
  await putManifest(client, ref.repository, tag, bytes, mediaType);
  return { mediaType, digest, size: bytes.length };
}

const layerDescriptor = (l: Layer): Descriptor => ({ mediaType: l.mediaType, digest: l.digest, size: l.size });

/**
 * Push an image whose layers may still have to be compressed. Layers compressed before (and the
 * others) go as blobs from the store; each of the rest is compressed, hashed and uploaded in one
 * pass (uploadStream), the compressed bytes teed into the store, so that the next push or export
 * of that layer compresses nothing. Then the manifest naming the compressed blobs.
 */
async function pushImageLayers(
  client: RegistryClient,
  blobs: BlobStore,
  ref: Reference,
  source: { image: Image; compression: Compression; codec: LayerCodec },
  stats: TransferStats,
  opts: PushOptions,
): Promise<Descriptor> {
  const { image, compression: c, codec } = source;
  const layers: Layer[] = [];
  const ready: Descriptor[] = [image.manifest.config];
  const todo: number[] = [];
  for (const [i, l] of image.layers.entries()) {
    const known = codec.needsCompression(l, c) ? await codec.known(l, c) : l;
    if (known) {
      layers[i] = known;
      ready.push(layerDescriptor(known));
    } else todo.push(i);
  }
  const streamOne = async (i: number): Promise<void> => {
    const l = image.layers[i];
    const s = codec.stream(l, c);
    stats.layersCompressed++;
    try {
      await uploadStream(client, ref.repository, s.pieces, s.done, stats);
      layers[i] = await s.done;
      opts.locations?.add(ref.registry, ref.repository, layers[i].digest);
    } catch (err) {
      if (!(err instanceof RegistryError) || !err.retryable) throw err;
      // The stream cannot be replayed: make the blob in the store (compressed.ts finds it if the
      // stream got that far) and push it from there, with uploadBlob's retries and resumes.
      client.log(`streamed upload of layer ${l.diffID} failed (${err.message}); pushing it from the store`);
      const m = await codec.materialise(l, c);
      if (m.compressed) stats.layersCompressed++;
      layers[i] = m.layer;
      await pushBlobs(client, blobs, ref, [layerDescriptor(m.layer)], stats, opts);
    }
  };
  // Two layers compress at once at most: each already keeps both cores busy (gzip.ts).
  await Promise.all([
    pushBlobs(client, blobs, ref, ready, stats, opts),
    mapLimit(todo, Math.min(2, opts.concurrency ?? 4), streamOne),
  ]);
  const { bytes, manifest } = codec.manifest(image, layers);
  const mediaType = manifest.mediaType ?? MediaType.OciManifest;
  const digest = sha256(bytes);
  if (ref.digest && ref.digest !== digest) throw new RegistryError('invalid', `cannot push ${digest} as ${ref.digest}`);
  await putManifest(client, ref.repository, ref.tag ?? digest, bytes, mediaType);
  return { mediaType, digest, size: bytes.length };
}

/**
 * Push an index whose images may have layers to compress: each such image as pushImageLayers pushes
 * one (by digest), the other entries as they are, then the index with its entries' descriptors
 * replaced by what went up (platform, annotations and the index's own fields kept).
 */
async function pushIndexLayers(
  client: RegistryClient,
  blobs: BlobStore,
  ref: Reference,
  source: { index: Digest; images: Map<Digest, Image>; compression: Compression; codec: LayerCodec },
  stats: TransferStats,
  opts: PushOptions,
): Promise<Descriptor> {
  const stored = await blobs.read(source.index);
  const parsed = parseManifestBytes(stored, MediaType.OciIndex);
  if (!parsed.index) throw new RegistryError('invalid', `cannot push ${source.index} as an index: it is not one`);
  const doc = JSON.parse(stored.toString('utf8')) as { manifests: Descriptor[] };
  const byDigest: Reference = { ...ref, tag: undefined, digest: undefined };
  const manifests: Descriptor[] = [];
  for (const entry of doc.manifests) {
    const image = source.images.get(entry.digest);
    const pushed = image
      ? await pushImageLayers(client, blobs, byDigest, { ...source, image }, stats, opts)
      : await pushManifestTree(
          client,
          blobs,
          byDigest,
          await blobs.read(entry.digest),
          entry.mediaType,
          stats,
          opts,
          false,
        );
    manifests.push({ ...entry, mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size });
  }
  const bytes = Buffer.from(JSON.stringify({ ...doc, manifests }));
  const digest = sha256(bytes);
  if (ref.digest && ref.digest !== digest) throw new RegistryError('invalid', `cannot push ${digest} as ${ref.digest}`);
  await putManifest(client, ref.repository, ref.tag ?? digest, bytes, parsed.mediaType);
  return { mediaType: parsed.mediaType, digest, size: bytes.length };
}

/** Push blobs from the store into a repository (no manifest). */
export async function pushBlobs(
  client: RegistryClient,
  blobs: BlobStore,
  ref: Reference,
  descriptors: Descriptor[],
  stats: TransferStats,
  opts: PushOptions = {},
): Promise<void> {
  // Largest first: the longest upload bounds the push, so its HEAD, POST and PUT go out before the
  // small blobs' and it never waits for a free slot.
  const unique = [...new Map(descriptors.map((d) => [d.digest, d])).values()].sort((a, b) => b.size - a.size);
  await mapLimit(unique, opts.concurrency ?? 4, async (d) => {
    const size = await blobs.size(d.digest);
    if (size === undefined)
      throw new RegistryError(
        'not-found',
        `cannot push ${d.digest} to ${ref.registry}/${ref.repository}: not in the local store`,
        { subject: d.digest },
      );
    if (size !== d.size)
      throw new RegistryError(
        'invalid',
        `cannot push ${d.digest}: ${size} bytes in the store, ${d.size} in the manifest`,
        { subject: d.digest },
      );
    await uploadBlob(client, ref.repository, d, blobs, stats, {
      chunkThreshold: opts.chunkThreshold,
      chunkSize: opts.chunkSize,
      mountFrom: opts.locations?.sources(ref.registry, ref.repository, d.digest),
    });
    opts.locations?.add(ref.registry, ref.repository, d.digest);
  });
}
