// The shared build cache in a registry (--cache-to/--cache-from type=registry,ref=R).
//
// Format: one OCI image manifest (distribution accepts it like any image manifest)
//   mediaType    application/vnd.oci.image.manifest.v1+json
//   artifactType application/vnd.tsbuild.cache.v1
//   config       application/vnd.tsbuild.cache.config.v1+json — a JSON blob
//                {"version":1,"records":<whatever the builder stores>}
//   layers       the layer blobs the records refer to, with their own media types
//                (so the registry keeps them alive and a pull can fetch only the ones a hit needs)
//   annotations  org.opencontainers.image.created
import { MediaType, type BlobStore, type Descriptor, type Digest, type Manifest } from '../types.js';
import { parseReference, type Reference } from '../reference.js';
import { fetchBlob, newStats } from './blob.js';
import { RegistryError } from './errors.js';
import { getManifest } from './manifest.js';
import { clientFor, type RemoteOptions } from './pull.js';
import { push, type PushOptions, type PushResult } from './push.js';

/**
 * --cache-to type=inline: the image's own cache records, under this key of its config blob
 * ({"key", "layer", "created"} each; their layers are the image's). pullCache reads them from an image.
 */
export const InlineCacheKey = 'tsbuild.cache.v1';

export const CacheMediaType = {
  Artifact: 'application/vnd.tsbuild.cache.v1',
  Config: 'application/vnd.tsbuild.cache.config.v1+json',
} as const;

export interface CacheArtifact<R = unknown> {
  records: R;
  /** Layer blobs referenced by the records; they must be in the store when pushing. */
  layers: Descriptor[];
}

export function cacheManifest(
  configDesc: Descriptor,
  layers: Descriptor[],
  created = new Date().toISOString(),
): Manifest & { artifactType: string } {
  return {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: CacheMediaType.Artifact,
    config: configDesc,
    layers: layers.map((l) => ({
      mediaType: l.mediaType,
      digest: l.digest,
      size: l.size,
      ...(l.annotations ? { annotations: l.annotations } : {}),
    })),
    annotations: { 'org.opencontainers.image.created': created },
  };
}

/** Write the cache records as a blob, build the artifact manifest, push both and the layers. */
export async function pushCache<R>(
  blobs: BlobStore,
  reference: string | Reference,
  artifact: CacheArtifact<R>,
  opts: PushOptions = {},
): Promise<PushResult> {
  const { bytes } = await putCacheArtifact(blobs, artifact);
  return push(blobs, { manifestBytes: bytes, mediaType: MediaType.OciManifest }, reference, opts);
}

/** Writes the records blob and the artifact manifest into the store (for a push or a layout). */
export async function putCacheArtifact<R>(
  blobs: BlobStore,
  artifact: CacheArtifact<R>,
): Promise<{ bytes: Buffer; digest: Digest; size: number; config: Digest }> {
  const config = await blobs.put(JSON.stringify({ version: 1, records: artifact.records }));
  const manifest = cacheManifest(
    { mediaType: CacheMediaType.Config, digest: config.digest, size: config.size },
    artifact.layers,
  );
  const bytes = Buffer.from(JSON.stringify(manifest));
  const { digest, size } = await blobs.put(bytes);
  return { bytes, digest, size, config: config.digest };
}

/** The largest records blob a cache may have (it is read whole). */
export const CacheConfigLimit = 64 * 1024 * 1024;

/** The records of a cache config blob, or why it is not one this version reads. */
export function parseCacheConfig<R>(bytes: Buffer): R {
  let body: { version?: unknown; records?: R } | undefined;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error('the cache records are not JSON');
  }
  if (!body || body.version !== 1) throw new Error(`unknown cache format version ${String(body?.version)}`);
  return body.records as R;
}

/**
 * Fetch the cache artifact's records (not its layers: fetch those on a hit with fetchBlobs).
 * Returns undefined when the reference does not exist.
 */
export async function pullCache<R = unknown>(
  blobs: BlobStore,
  reference: string | Reference,
  opts: RemoteOptions = {},
): Promise<(CacheArtifact<R> & { manifestDigest: Digest; diffIDs?: Digest[] }) | undefined> {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  const client = clientFor(ref, opts);
  let fetched;
  try {
    fetched = await getManifest(client, ref.repository, ref.digest ?? ref.tag ?? 'latest');
  } catch (err) {
    if (err instanceof RegistryError && err.code === 'not-found') return undefined;
    throw err;
  }
  const where = `${ref.registry}/${ref.repository}`;
  const m = fetched.manifest;
  const inline = m && (m.config.mediaType === MediaType.OciConfig || m.config.mediaType === MediaType.DockerConfig);
  if (!m || (m.config.mediaType !== CacheMediaType.Config && !inline)) {
    throw new RegistryError(
      'invalid',
      `${where}: not a tsbuild cache (config media type ${m?.config.mediaType ?? fetched.mediaType})`,
      { host: client.host, subject: fetched.digest },
    );
  }
  if (m.config.size > CacheConfigLimit)
    throw new RegistryError('too-large', `${where}: cache config of ${m.config.size} bytes`, { host: client.host });
  if (!(await blobs.has(m.config.digest))) await fetchBlob(client, ref.repository, m.config, blobs, newStats());
  let records: R;
  let diffIDs: Digest[] | undefined;
  try {
    const bytes = await blobs.read(m.config.digest);
    if (inline) ({ records, diffIDs } = inlineRecords<R>(bytes));
    else records = parseCacheConfig<R>(bytes);
  } catch (e) {
    throw new RegistryError('invalid', `${where}: ${(e as Error).message}`, { host: client.host });
  }
  if (opts.locations) {
    for (const l of m.layers) opts.locations.add(ref.registry, ref.repository, l.digest);
    await opts.locations.save();
  }
  return { records, layers: m.layers, manifestDigest: fetched.digest, ...(diffIDs ? { diffIDs } : {}) };
}

/**
 * The records an image config carries (InlineCacheKey), and its layers' diffIDs: the records name the
 * layers as the store that built the image held them, the image may carry them compressed otherwise
 * (a push compresses), so a reader matches them by diffID. An image built without records is no cache.
 */
function inlineRecords<R>(bytes: Buffer): { records: R; diffIDs: Digest[] } {
  let config: Record<string, unknown> | undefined;
  try {
    config = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error('the image config is not JSON');
  }
  const records = config?.[InlineCacheKey];
  if (!Array.isArray(records))
    throw new Error('an image without inline cache records (built without --cache-to type=inline)');
  const rootfs = config?.rootfs as { diff_ids?: unknown } | undefined;
  const diffIDs = Array.isArray(rootfs?.diff_ids) ? (rootfs.diff_ids as Digest[]) : [];
  return { records: records as R, diffIDs };
}
