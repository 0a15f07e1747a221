// Pull: resolve a reference to one platform's manifest, then fetch the config and the layers
// into a BlobStore (bounded parallelism, skipping blobs already present), every blob verified.
import { parseReference, type Reference } from '../reference.js';
import type { BlobStore, Descriptor, Digest, Image, ImageConfig, Layer, Manifest } from '../types.js';
import { fetchBlob, newStats, type TransferStats } from './blob.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { RegistryError } from './errors.js';
import { BlobLocations } from './locations.js';
import { choosePlatform, getManifest, parsePlatform, type FetchedManifest, type Platform } from './manifest.js';
import { mapLimit } from './pool.js';
import { validate } from '../validate.js';

export interface RemoteOptions extends ClientOptions {
  /** Reuse a client (and its tokens) across calls. Must be for the reference's registry. */
  client?: RegistryClient;
  /** Known blob locations, for mounts; pulls and pushes add to it and save it. */
  locations?: BlobLocations;
}

export interface ResolveOptions extends RemoteOptions {
  /** os/arch[/variant]; default linux/amd64. */
  platform?: string | Platform;
}

export interface Resolved {
  ref: Reference;
  /** The platform manifest. */
  descriptor: Descriptor;
  manifest: FetchedManifest;
  /** The index it was chosen from, when the reference named one. */
  index?: FetchedManifest;
}

export function clientFor(ref: Reference, opts: RemoteOptions): RegistryClient {
  if (opts.client) {
    if (opts.client.registry !== ref.registry)
      throw new RegistryError('invalid', `client for ${opts.client.registry} used for ${ref.registry}`);
    return opts.client;
  }
  return new RegistryClient(ref.registry, opts);
}

const toRef = (r: string | Reference) => (typeof r === 'string' ? parseReference(r) : r);

/** Resolve a tag or digest to the manifest for one platform. */
export async function resolve(reference: string | Reference, opts: ResolveOptions = {}): Promise<Resolved> {
  const ref = toRef(reference);
  const client = clientFor(ref, opts);
  const top = await getManifest(client, ref.repository, ref.digest ?? ref.tag ?? 'latest');
  if (top.manifest)
    return { ref, descriptor: { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length }, manifest: top };
  const platform = parsePlatform(opts.platform);
  const chosen = choosePlatform(top.index!, platform);
  if (!chosen) {
    const have = top
      .index!.manifests.map((m) =>
        m.platform
          ? `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ''}`
          : '?',
      )
      .join(', ');
    throw new RegistryError(
      'not-found',
      `${ref.registry}/${ref.repository}: no manifest for ${platform.os}/${platform.architecture} in the index ` +
        `(has: ${have || 'nothing'})`,
      { host: client.host, subject: top.digest },
    );
  }
  const child = await getManifest(client, ref.repository, chosen.digest, chosen);
  if (!child.manifest)
    throw new RegistryError(
      'invalid',
      `${ref.registry}/${ref.repository}: index entry ${chosen.digest} is itself an index`,
      { host: client.host, subject: chosen.digest },
    );
  return { ref, descriptor: { ...chosen, mediaType: child.mediaType }, manifest: child, index: top };
}

export interface PullOptions extends ResolveOptions {
  /** Parallel blob downloads (the config's included). Default 4. */
  concurrency?: number;
  /** Called as each layer is in the store (in completion order), e.g. to start unpacking. */
  onLayer?: (layer: Layer, index: number) => void | Promise<void>;
}

export interface PullResult extends Image {
  ref: Reference;
  manifestMediaType: string;
  manifestBytes: Buffer;
  /** The index the manifest was chosen from, stored as a blob too. */
  index?: { digest: Digest; mediaType: string };
  stats: TransferStats;
}

const configTypes = ['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json'];

/**
 * Fetch an image into `blobs`: config, layers, manifest (and index) bytes. Tagging is the
 * caller's business (store.tags), as is unpacking (onLayer lets it start early).
 */
export async function pull(
  blobs: BlobStore,
  reference: string | Reference,
  opts: PullOptions = {},
): Promise<PullResult> {
  const ref = toRef(reference);
  const client = clientFor(ref, opts);
  const resolved = await resolve(ref, { ...opts, client });
  const manifest = resolved.manifest.manifest as Manifest;
  const stats = newStats();
  const where = `${ref.registry}/${ref.repository}`;
  if (!configTypes.includes(manifest.config.mediaType)) {
    throw new RegistryError(
      'invalid',
      `${where}: ${resolved.descriptor.digest} is not an image (config media type ${manifest.config.mediaType})`,
      { host: client.host },
    );
  }
  if (manifest.config.size > 8 * 1024 * 1024)
    throw new RegistryError('too-large', `${where}: image config of ${manifest.config.size} bytes`, {
      host: client.host,
    });
  const get = async (desc: Descriptor) => {
    if (await blobs.has(desc.digest)) {
      stats.blobsSkipped++;
      return;
    }
    await fetchBlob(client, ref.repository, desc, blobs, stats);
  };
  // The config and the layers download together (the config used to come first, alone: a round trip
  // and a small file's fsync before any layer started); the config first, for its diff_ids, then the
  // layers largest first, since the longest download bounds the pull and must not wait for a slot.
  // Every blob is verified as it lands; the layers' diff_ids are checked as soon as the config is in.
  const blobsToGet = [manifest.config, ...manifest.layers];
  const order = [0, ...manifest.layers.map((_, i) => i + 1).sort((a, b) => blobsToGet[b].size - blobsToGet[a].size)];
  let config: ImageConfig | undefined;
  let layers: Layer[] | undefined;
  const early: number[] = []; // layers in the store before the config: onLayer once it is
  await mapLimit(order, opts.concurrency ?? 4, async (j) => {
    await get(blobsToGet[j]);
    if (j === 0) {
      config = await blobs.readJSON<ImageConfig>(manifest.config.digest);
      layers = layersOf(manifest, config, where, client.host);
      for (const i of early.splice(0)) await opts.onLayer?.(layers[i], i);
    } else if (layers) await opts.onLayer?.(layers[j - 1], j - 1);
    else early.push(j - 1);
  });
  const put = await blobs.put(resolved.manifest.bytes);
  if (put.digest !== resolved.descriptor.digest)
    throw new RegistryError('invalid', `${where}: manifest stored as ${put.digest}`, {
      subject: resolved.descriptor.digest,
    });
  if (resolved.index) await blobs.put(resolved.index.bytes);
  // The blobs were verified as they came; the image as a whole is checked once here, by its descriptors.
  if (!config || !layers) throw new Error('unreachable: the pool ended without the config');
  await validate(
    { manifestDigest: put.digest, manifest, configDigest: manifest.config.digest, config, layers },
    blobs,
    { layers: 'stat' },
  );
  if (opts.locations) {
    for (const d of [manifest.config, ...manifest.layers]) opts.locations.add(ref.registry, ref.repository, d.digest);
    await opts.locations.save();
  }
  return {
    ref,
    manifestDigest: resolved.descriptor.digest,
    manifestMediaType: resolved.manifest.mediaType,
    manifestBytes: resolved.manifest.bytes,
    manifest,
    configDigest: manifest.config.digest,
    config,
    layers,
    index: resolved.index ? { digest: resolved.index.digest, mediaType: resolved.index.mediaType } : undefined,
    stats,
  };
}

/** The manifest's layers with the config's diff_ids, which must be one per layer. */
function layersOf(manifest: Manifest, config: ImageConfig, where: string, host: string): Layer[] {
  const diffIDs = config?.rootfs?.diff_ids;
  if (!Array.isArray(diffIDs) || diffIDs.length !== manifest.layers.length) {
    throw new RegistryError(
      'invalid',
      `${where}: the config lists ${Array.isArray(diffIDs) ? diffIDs.length : 'no'} diff_ids for ` +
        `${manifest.layers.length} layers`,
      { host, subject: manifest.config.digest },
    );
  }
  return manifest.layers.map((l, i) => ({
    digest: l.digest,
    diffID: diffIDs[i],
    size: l.size,
    mediaType: l.mediaType,
  }));
}

/** Fetch particular blobs of a repository (e.g. cache layers) into the store. */
export async function fetchBlobs(
  blobs: BlobStore,
  reference: string | Reference,
  descriptors: Descriptor[],
  opts: RemoteOptions & { concurrency?: number } = {},
): Promise<TransferStats> {
  const ref = toRef(reference);
  const client = clientFor(ref, opts);
  const stats = newStats();
  await mapLimit(descriptors, opts.concurrency ?? 3, async (d) => {
    if (await blobs.has(d.digest)) stats.blobsSkipped++;
    else await fetchBlob(client, ref.repository, d, blobs, stats);
  });
  return stats;
}
