// Push: blobs first (layers and config in parallel), each skipped if the registry has
// it, mounted if it is known to be in another repository of the registry, else uploaded
// from the store as a stream; then the manifest with its exact bytes and content type.
import { MediaType } from '../types.js';
import type { BlobStore, Compression, Descriptor, Digest, Image, Manifest } from '../types.js';
import { parseReference, type Reference } from '../reference.js';
import { newStats, type TransferStats } from './blob.js';
import { RegistryError } from './errors.js';
import { parseManifestBytes, putManifest, sha256 } from './manifest.js';
import { clientFor } from './pull.js';
import { Uploads, type LayerCodec, type UploadsOptions } from './uploads.js';
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

export type { LayerCodec } from './uploads.js';

export interface PushOptions extends UploadsOptions {
  /**
   * Uploads already under way into the repository pushed to (`build --push` starts each layer's as
   * the build commits it): the push joins them instead of starting its own, then sends the manifest.
   */
  uploads?: Uploads;
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

/**
 * Push an image whose layers may still have to be compressed. Layers compressed before (and the
 * others) go as blobs from the store; each of the rest is compressed, hashed and uploaded in one
 * pass, the compressed bytes teed into the store (Uploads.layer). With `opts.uploads` for this
 * repository, layers it has started (or finished) are not started again. Then the manifest naming
 * the compressed blobs, only once every blob is in the registry.
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
  const uploads = opts.uploads?.serves(ref) ? opts.uploads : new Uploads(client, blobs, ref, opts, stats);
  // Largest first: the longest upload bounds the push, so it never waits for a free slot.
  const order = [...image.layers.keys()].sort((a, b) => image.layers[b].size - image.layers[a].size);
  const pushed = new Map(order.map((i) => [i, uploads.layer(image.layers[i], c, codec)]));
  const config = uploads.blob(image.manifest.config);
  const results = await Promise.allSettled([config, ...pushed.values()]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const layers = await Promise.all(image.layers.map((_, i) => pushed.get(i)!));
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
  const uploads = opts.uploads?.serves(ref) ? opts.uploads : new Uploads(client, blobs, ref, opts, stats);
  // Largest first: the longest upload bounds the push, so its HEAD, POST and PUT go out before the
  // small blobs' and it never waits for a free slot.
  const unique = [...new Map(descriptors.map((d) => [d.digest, d])).values()].sort((a, b) => b.size - a.size);
  const results = await Promise.allSettled(unique.map((d) => uploads.blob(d)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
