// Registry push: what a tag (or an image id, with a destination) names in the store goes to a
// registry through @tsbuild/layerstore's `remote`, for `tsbuild push` and `build --push`.
// Insecure registries (loopback, --insecure-registry) as docker has them: HTTPS unverified, else plain HTTP.
// Credentials come from $DOCKER_CONFIG/config.json and never appear in output or errors.
import { join } from 'node:path';
import {
  formatReference,
  familiarName,
  formatPlatform,
  layerCodec,
  needsCompression,
  parseReference,
  remote,
  type Compression,
  type Descriptor,
  type Digest,
  type Image,
  type Layer,
  type Reference,
  type Store,
} from '@tsbuild/layerstore';
import type { Reporter } from '../progress/index.js';
import { BuildError, UsageError } from '../errors.js';
import { trace } from '../trace.js';

/** Options shared by every remote call of one command: plain-HTTP hosts, the store's blob locations (for mounts). */
/** `signal`: the command's (Ctrl-C), which stops every request of the transfer. */
export async function remoteOptions(
  store: Store,
  insecure: string[],
  signal?: AbortSignal,
): Promise<remote.RemoteOptions> {
  const locations = await remote.BlobLocations.load(join(store.root, 'remote', 'locations.json'));
  return { insecure, locations, signal };
}

export function parseRef(input: string, what: string): Reference {
  try {
    return parseReference(input);
  } catch (e) {
    throw new UsageError(`${what}: ${(e as Error).message}`);
  }
}

/** How a push compresses layers: compression=, compression-level=, force-compression= (or --compression…). */
export interface PushCompression {
  compression?: Compression;
  level?: number;
  /** Layers stored in another compression (a pulled base's gzip, with zstd asked) recompressed too. */
  force?: boolean;
}

/**
 * Pushes what `ref` names in the store (a tag; or an image id/digest with `dest`) to the registry of
 * `dest ?? ref`. An image whose layers are stored uncompressed (what builds make) goes up with
 * them compressed as `compression` says (default gzip): each layer compressed once, in the same
 * pass as its upload, and remembered; an index of such images (a multi-platform build) the same way, image by
 * image. Anything else (a pulled image or index) goes byte for byte, unless `force` asks every layer in
 * `compression`: then layers stored otherwise are recompressed (and remembered) as they go up.
 */
export async function pushImage(
  store: Store,
  ref: string,
  o: PushCompression & {
    insecure: string[];
    reporter: Reporter;
    manifestDigest?: string;
    /** Uploads started during the build (earlyPush): the push joins them. */
    early?: EarlyPush;
    signal?: AbortSignal;
  },
): Promise<remote.PushResult> {
  const parsed = parseRef(ref, 'push');
  const name = formatReference(parsed);
  let manifestDigest = o.manifestDigest;
  if (!manifestDigest) {
    // Push exactly what the tag points at (an index stays an index).
    const desc = parsed.digest ? undefined : await store.tags.get(name);
    // Everything the tag needs is leased (and must be there) before the first byte goes out.
    const damage = desc ? await store.images.verify(desc) : undefined;
    if (damage && (damage.missing.length || damage.problems.length)) {
      const what = [...damage.missing.map((d) => `blob ${d} is missing`), ...damage.problems].join('; ');
      throw new BuildError(`${familiarName(parsed)} is broken: ${what}; see 'tsbuild check'`);
    }
    manifestDigest = desc?.digest ?? (await store.images.get(ref))?.manifestDigest;
    if (!manifestDigest) throw new BuildError(`An image does not exist locally with the tag: ${familiarName(parsed)}`);
  }
  const handle = o.reporter.step(`push ${familiarName(parsed)}`);
  try {
    trace(`push ${manifestDigest}`);
    const compression = o.compression ?? 'gzip';
    const source = await deferredSource(store, familiarName(parsed), manifestDigest as Digest, compression, o);
    const early = o.early?.uploads.serves(parsed) ? o.early : undefined;
    const result = await remote.push(
      store.blobs,
      source ?? { manifestDigest: manifestDigest as Digest },
      parsed,
      early ? early.options : { ...(await remoteOptions(store, o.insecure, o.signal)), onUploaded: traceUpload },
    );
    // What the early uploads did counts as this push's (they are its blobs).
    const stats = early ? addStats(result.stats, early.uploads.stats) : result.stats;
    trace(`pushed: ${stats.layersCompressed} layers compressed, ${stats.blobsUploaded} blobs uploaded`);
    if (stats.layersCompressed) handle.log(`compressed ${stats.layersCompressed} layers (${compression})`);
    handle.log(`digest: ${result.descriptor.digest}`);
    handle.done();
    return result;
  } catch (e) {
    handle.fail((e as Error).message);
    throw e;
  }
}

/**
 * `build --push`: the uploads into the first tag's repository, started while the build runs. Each
 * layer of the image goes up (compressed as `compression` says, and remembered in the store) as
 * soon as the build has it, a few at a time, overlapping the steps after it; pushImage with
 * `early` then waits for them and sends the config and the manifest. A build that fails calls
 * close(): no manifest is pushed, and the blobs already sent stay (as with BuildKit).
 */
export interface EarlyPush {
  /** Start uploading a layer of the image (the build calls it as each is written). */
  add(layer: Layer): void;
  /** No more uploads start; waits for the running ones. */
  close(): Promise<void>;
  readonly uploads: remote.Uploads;
  readonly options: remote.PushOptions;
}

export async function earlyPush(
  store: Store,
  ref: string,
  o: PushCompression & { insecure: string[]; signal?: AbortSignal },
): Promise<EarlyPush> {
  const compression = o.compression ?? 'gzip';
  const codec = layerCodec(store, { level: o.level, force: o.force });
  const base = { ...(await remoteOptions(store, o.insecure, o.signal)), onUploaded: traceUpload };
  const uploads = remote.startUploads(store.blobs, parseRef(ref, 'push'), base);
  return {
    add(layer) {
      trace(`push: layer ${layer.diffID} queued`);
      // A failure is the push's, when it waits for this upload (or the build's close()).
      uploads.layer(layer, compression, codec).catch(() => {});
    },
    close: () => uploads.close(),
    uploads,
    options: { ...base, client: uploads.client, uploads },
  };
}

/** One trace line per blob as it lands in the registry (tests of the early upload wait for it). */
function traceUpload(e: remote.UploadEvent): void {
  trace(`push: ${e.diffID ? `layer ${e.diffID} as ` : ''}blob ${e.digest} ${e.outcome}`);
}

function addStats(a: remote.TransferStats, b: remote.TransferStats): remote.TransferStats {
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof remote.TransferStats)[]) out[k] += b[k];
  return out;
}

/**
 * What to push with deferred compression: the image a manifest names, or an index with the images
 * of its entries, when some of their layers are stored uncompressed (a build's), or, forced, in
 * another compression than `c`. Undefined when
 * nothing needs compressing: the tree goes up byte for byte.
 */
async function deferredSource(
  store: Store,
  name: string,
  digest: Digest,
  c: Compression,
  o: PushCompression,
): Promise<remote.PushSource | undefined> {
  const codec = layerCodec(store, { level: o.level, force: o.force });
  const doc = await readDoc(store, digest);
  if (Array.isArray(doc.layers)) {
    const image = await compressible(store, digest, c, o.force);
    return image ? { image, compression: c, codec } : undefined;
  }
  if (!Array.isArray(doc.manifests)) return undefined;
  const images = new Map<Digest, Image>();
  for (const entry of doc.manifests as Descriptor[]) {
    // A pulled index keeps only the platforms pulled: pushing it would need the others.
    if (!(await store.blobs.has(entry.digest)))
      throw new BuildError(
        `${name} is an index whose image for ${entry.platform ? formatPlatform(entry.platform) : entry.digest} ` +
          `is not in the store (only some platforms were pulled): pull it first ('tsbuild pull --platform …')`,
      );
    // A nested index goes as it is.
    if (!Array.isArray((await readDoc(store, entry.digest)).layers)) continue;
    const image = await compressible(store, entry.digest, c, o.force);
    if (image) images.set(entry.digest, image);
  }
  return images.size ? { index: digest, images, compression: c, codec } : undefined;
}

async function readDoc(store: Store, digest: Digest): Promise<{ layers?: unknown; manifests?: unknown }> {
  return JSON.parse((await store.blobs.read(digest)).toString('utf8')) as { layers?: unknown; manifests?: unknown };
}

/** The image a manifest names, if it has layers to compress for this push. */
async function compressible(
  store: Store,
  manifestDigest: Digest,
  c: Compression,
  force?: boolean,
): Promise<Image | undefined> {
  const image = await store.images.get(manifestDigest);
  return image && image.layers.some((l) => needsCompression(l, c, force)) ? image : undefined;
}
