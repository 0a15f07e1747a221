// Reading an image from wherever its blobs live (the store, an OCI layout, an archive): an index resolved
// to one platform, the manifest and config parsed and checked against each other; and the layer media types.
import {
  MediaType,
  StoreError,
  type Descriptor,
  type Digest,
  type Image,
  type ImageConfig,
  type Layer,
  type Manifest,
} from './types.js';
import { choosePlatform, formatPlatform, hostPlatform, type Platform } from './platform.js';
import type { OciIndex } from './tags.js';

/** What reading an image needs from wherever blobs live (store, OCI layout, archive). */
export interface BlobSource {
  read(digest: Digest): Promise<Buffer>;
  /** Whether a blob is there: an index's entries for platforms never pulled are not (see readImage). */
  has?(digest: Digest): Promise<boolean>;
}

const layerMediaTypes: Record<string, { oci: string; docker: string }> = {
  tar: { oci: MediaType.OciLayer, docker: 'application/vnd.docker.image.rootfs.diff.tar' },
  gzip: { oci: MediaType.OciLayerGzip, docker: MediaType.DockerLayerGzip },
  zstd: { oci: MediaType.OciLayerZstd, docker: MediaType.OciLayerZstd },
};

export function layerCompression(mediaType: string): 'tar' | 'gzip' | 'zstd' {
  if (mediaType.endsWith('gzip')) return 'gzip';
  if (mediaType.endsWith('zstd')) return 'zstd';
  return 'tar';
}

/** The layer media type for a manifest of the given format. */
export function layerMediaType(mediaType: string, format: 'oci' | 'docker'): string {
  return layerMediaTypes[layerCompression(mediaType)][format];
}

export function isIndexMediaType(mt: string | undefined): boolean {
  return mt === MediaType.OciIndex || mt === MediaType.DockerManifestList;
}

async function readJSON<T>(src: BlobSource, d: Digest): Promise<T> {
  const buf = await src.read(d);
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch (e) {
    throw new StoreError('invalid', `blob ${d} is not JSON: ${(e as Error).message}`, d);
  }
}

/**
 * Read the image a descriptor points at. An index (multi-platform) resolves to one entry (see
 * platform.ts for the matching rule). With `platform`, that platform's or none: a store keeps an index
 * under its tag as containerd does, with only the platforms pulled, and a missing one is "not in the
 * store" (not-found). Without it, as docker shows such an image: the host's entry if it is there,
 * else the first entry that is.
 */
export async function readImage(src: BlobSource, desc: Descriptor, platform?: Platform): Promise<Image> {
  if (isIndexMediaType(desc.mediaType)) {
    const idx = await readJSON<OciIndex>(src, desc.digest);
    const manifests = idx.manifests.filter(
      (m) => !isIndexMediaType(m.mediaType) && m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest',
    );
    const want = platform ?? hostPlatform();
    const pick = choosePlatform(manifests, want);
    const there = async (m: Descriptor) => (src.has ? src.has(m.digest) : true);
    if (pick && (await there(pick))) return readImage(src, pick, want);
    if (!platform) for (const m of manifests) if (await there(m)) return readImage(src, m, m.platform ?? want);
    const what = formatPlatform(want);
    throw new StoreError(
      'not-found',
      pick
        ? `index ${desc.digest}: the image for ${what} is not in the store`
        : `index ${desc.digest} has no manifest for ${what}`,
      desc.digest,
    );
  }
  const manifest = await readJSON<Manifest>(src, desc.digest);
  if (!manifest || typeof manifest !== 'object' || !manifest.config || !Array.isArray(manifest.layers)) {
    throw new StoreError('invalid', `blob ${desc.digest} is not an image manifest`, desc.digest);
  }
  const config = await readJSON<ImageConfig>(src, manifest.config.digest);
  const diffIDs = config.rootfs?.diff_ids ?? [];
  if (diffIDs.length !== manifest.layers.length) {
    throw new StoreError(
      'invalid',
      `image ${desc.digest}: config lists ${diffIDs.length} diff_ids but the manifest has ` +
        `${manifest.layers.length} layers`,
      desc.digest,
    );
  }
  const layers: Layer[] = manifest.layers.map((l, i) => ({
    digest: l.digest,
    diffID: diffIDs[i],
    size: l.size,
    mediaType: l.mediaType,
  }));
  return { manifestDigest: desc.digest, manifest, configDigest: manifest.config.digest, config, layers };
}

/** The descriptor that names an image's manifest (for tags and indexes). */
export function manifestDescriptor(image: Image, manifestSize: number): Descriptor {
  return {
    mediaType: image.manifest.mediaType ?? MediaType.OciManifest,
    digest: image.manifestDigest,
    size: manifestSize,
    platform: {
      architecture: image.config.architecture,
      os: image.config.os,
      ...(image.config.variant ? { variant: image.config.variant } : {}),
    },
  };
}
