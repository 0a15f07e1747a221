// The build cache shared through a registry (--cache-to / --cache-from type=registry,ref=R).
//
// Export: the cache records of this build's filesystem steps ({key, layer, created}) go into a
// tsbuild cache artifact (remote.pushCache) together with the layers they name; mode=min takes
// only the steps whose layers are in the final image (the target stage and the stages it is
// FROM), mode=max every stage's steps.
// Import: remote.pullCache fetches only the records; they are kept in memory for the build that
// asked for them and never written into store.cache, where they would keep serving later builds
// that did not trust that registry (the store's own record of a key wins). Layer blobs stay in the
// registry until a step hits: then the solver's fetchLayer hook (see solver/solver.ts) fetches exactly
// that blob. Snapshots are unpacked from it later, only if a RUN/COPY actually needs the
// filesystem (store.snapshots.ensure).
//
// type=local,dest=DIR / src=DIR: the same artifact (records blob, manifest, layers) in an OCI layout
// at DIR, as buildx writes its local cache: index.json names the artifact by its tag (default
// "latest"). A layout from elsewhere is untrusted like a registry: every member is read without
// following a symlink, blobs are verified against their digests, and a bad cache is a warning.
import { resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { existsSync, promises as fsp } from 'node:fs';
import { cacheMountPath } from '../solver/ops/cachemounts.js';
import { unpackLayer } from '@tsbuild/layerstore/layer';
import { listMount, mountLayers, MaxMountLayers, type MountListing } from './mount-layers.js';
import {
  isDigest,
  layout,
  materialiseLayer,
  MediaType,
  parseReference,
  remote,
  type Compression,
  type Descriptor,
  type Digest,
  type Layer,
  type Store,
} from '@tsbuild/layerstore';
import { UsageError } from '../errors.js';
import { parseSize } from '../options.js';
import type { Reporter } from '../progress/index.js';

/** Records a registry cache holds, kept in memory for the build that asked for them (importCache). */
export interface ImportedCache {
  record(key: Digest): StepRecord | undefined;
  fetchLayer(layer: Layer): Promise<boolean>;
  /** Whether an imported artifact lists this layer (a dry run counts it as a hit without fetching it). */
  canFetch(digest: Digest): boolean;
  /**
   * Fills an empty cache mount directory with what an imported artifact carries for that id (once per
   * id and build; a directory that already has content is left alone: the store's own cache wins).
   */
  restoreMount(id: string, dir: string): Promise<void>;
  /** A mount this build restored: its layers and what it held then (--cache-to exports only what changed). */
  restoredMount(id: string): { layers: Layer[]; listing: MountListing } | undefined;
}

/** What a cache record of a filesystem step holds. */
export interface StepRecord {
  layer: Layer | null;
  created: string;
  /** The step that made it ("[app 3/5] RUN npm ci"), for `tsbuild cache ls`; not shared through a registry. */
  step?: string;
}

export interface CacheRef {
  /** inline: the records go into the image's config (build's inlineCache), read back with --cache-from REF. */
  type: 'registry' | 'local' | 'inline';
  /** The registry reference, or for type=local the layout directory (absolute). */
  ref: string;
  mode: 'min' | 'max';
  /** type=local: the index.json entry (ref name) of the artifact. */
  tag?: string;
  /** --cache-to ...,mounts=ID[,ID...]: the RUN --mount=type=cache ids whose content travels too. */
  mounts: string[];
  /** --cache-to ...,max-size=SIZE: a mount whose layers add up to more than this is not exported. */
  maxSize?: number;
}

/** A cache mount's content in an artifact: its layers, bottom first, among the records (older readers skip it). */
interface MountRecord {
  mount: string;
  layers: Layer[];
}

/** How progress and warnings name a cache. */
const where = (c: CacheRef) => (c.type === 'local' ? `type=local ${c.ref}` : c.ref);

/** One shareable record: the solver's cache record of a filesystem step under its key. */
export interface SharedRecord {
  key: Digest;
  layer: Layer | null;
  created: string;
}

/**
 * `type=registry,ref=R[,mode=min|max][,mounts=ID[,ID...]][,max-size=SIZE]`, or a bare `R` (as buildx takes
 * it for --cache-from); `type=local,dest=DIR[,mode=min|max][,tag=T][,mounts=...][,max-size=...]` for
 * --cache-to, `type=local,src=DIR[,tag=T]` for --cache-from. The ids of `mounts=` run on after commas
 * until the next `key=`.
 */
export function parseCacheOption(value: string, flag: '--cache-to' | '--cache-from'): CacheRef {
  const kv = new Map<string, string>();
  if (!value.includes('=')) kv.set('type', 'registry').set('ref', value);
  else {
    let last: string | undefined;
    for (const part of value.split(',')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      if (eq < 0 && last === 'mounts') kv.set('mounts', `${kv.get('mounts')},${part}`);
      else if (eq <= 0) throw new UsageError(`${flag}: "${part}" is not key=value`);
      else kv.set((last = part.slice(0, eq).trim()), part.slice(eq + 1));
    }
  }
  const type = kv.get('type') ?? 'registry';
  if (type === 'inline' && flag === '--cache-to') {
    for (const k of kv.keys())
      if (k !== 'type' && k !== 'mode') throw new UsageError(`${flag} ${value}: unknown key "${k}"`);
    // As BuildKit: the image carries only its own layers, so only its own steps' records.
    if ((kv.get('mode') ?? 'min') !== 'min')
      throw new UsageError(`${flag} ${value}: type=inline only supports mode=min (the image's own steps)`);
    return { type, ref: '', mode: 'min', mounts: [] };
  }
  if (type !== 'registry' && type !== 'local')
    throw new UsageError(
      `${flag} ${value}: type=${type} is not supported (type=registry, type=local` +
        `${flag === '--cache-to' ? ' or type=inline' : '; an image pushed with inline cache: its reference'})`,
    );
  const dirKey = flag === '--cache-to' ? 'dest' : 'src';
  const keys = [...(type === 'registry' ? ['type', 'ref'] : ['type', dirKey, 'tag']), 'mode', 'mounts', 'max-size'];
  for (const k of kv.keys()) if (!keys.includes(k)) throw new UsageError(`${flag} ${value}: unknown key "${k}"`);
  const mode = kv.get('mode') ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new UsageError(`${flag} ${value}: mode=${mode} is not one of min, max`);
  for (const k of ['mode', 'mounts', 'max-size'])
    if (flag === '--cache-from' && kv.has(k))
      throw new UsageError(`${flag} ${value}: ${k}= only applies to --cache-to`);
  const mounts = (kv.get('mounts') ?? '').split(',').filter(Boolean);
  if (kv.has('mounts') && !mounts.length) throw new UsageError(`${flag} ${value}: mounts= needs at least one id`);
  const size = kv.get('max-size');
  const maxSize = size === undefined ? undefined : parseSize(size, `${flag} max-size`);
  if (type === 'local') {
    const dir = kv.get(dirKey);
    if (!dir) throw new UsageError(`${flag} ${value}: ${dirKey}= is required for type=local`);
    const tag = kv.get('tag') ?? 'latest';
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) throw new UsageError(`${flag} ${value}: bad tag "${tag}"`);
    return { type, ref: resolve(dir), mode, tag, mounts, maxSize };
  }
  const ref = kv.get('ref');
  if (!ref) throw new UsageError(`${flag} ${value}: ref= is required`);
  try {
    parseReference(ref);
  } catch (e) {
    throw new UsageError(`${flag} ${value}: ${(e as Error).message}`);
  }
  return { type, ref, mode, mounts, maxSize };
}

/** A manifest is read whole: no more than this. */
const ManifestLimit = 4 << 20;

/**
 * The cache artifact at a layout's tag, read as pullCache reads it from a registry (records only;
 * layers are copied from the layout on a hit). Undefined when there is no layout or no such tag.
 */
async function readLocalCache(
  c: CacheRef,
): Promise<{ records: unknown; layers: Descriptor[]; blobs: layout.LayoutBlobs } | undefined> {
  let index;
  try {
    index = await layout.readIndex(c.ref);
  } catch (e) {
    if ((e as Error).message.includes('index.json is missing')) return undefined;
    throw e;
  }
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === c.tag);
  if (!desc) return undefined;
  if (!isDigest(desc.digest) || !(desc.size <= ManifestLimit)) throw new Error(`bad index.json entry "${c.tag}"`);
  const blobs = new layout.LayoutBlobs(c.ref);
  let m: { config?: Descriptor; layers?: Descriptor[] };
  try {
    m = JSON.parse((await blobs.read(desc.digest)).toString('utf8'));
  } catch (e) {
    throw new Error(`manifest ${desc.digest}: ${(e as Error).message}`);
  }
  if (m?.config?.mediaType !== remote.CacheMediaType.Config || !isDigest(m.config.digest))
    throw new Error(`not a tsbuild cache (config media type ${String(m?.config?.mediaType)})`);
  if (!(m.config.size <= remote.CacheConfigLimit)) throw new Error(`cache config of ${m.config.size} bytes`);
  const records = remote.parseCacheConfig(await blobs.read(m.config.digest));
  const layers = (Array.isArray(m.layers) ? m.layers : []).filter(
    (l) => isDigest(l?.digest) && Number.isSafeInteger(l.size) && l.size >= 0,
  );
  return { records, layers, blobs };
}

/** Copies a layer blob from a layout into the store: verified against digest and size, as every blob. */
async function copyFromLayout(store: Store, blobs: layout.LayoutBlobs, desc: Descriptor): Promise<void> {
  const ingest = store.blobs.ingest();
  try {
    await pipeline(blobs.open(desc.digest), ingest);
    await ingest.commit({ digest: desc.digest, size: desc.size });
  } catch (e) {
    await ingest.abort();
    throw e;
  }
}

/** A record from a registry is untrusted input: keep only well-formed ones. */
function validRecord(r: unknown): r is SharedRecord {
  if (!r || typeof r !== 'object') return false;
  const x = r as Partial<SharedRecord>;
  if (!isDigest(x.key) || typeof x.created !== 'string' || Number.isNaN(Date.parse(x.created))) return false;
  if (x.layer === null) return true;
  return validLayer(x.layer);
}

function validMount(r: unknown): r is MountRecord {
  if (!r || typeof r !== 'object') return false;
  const x = r as Partial<MountRecord>;
  return (
    typeof x.mount === 'string' &&
    x.mount.length > 0 &&
    x.mount.length < 256 &&
    Array.isArray(x.layers) &&
    x.layers.length > 0 &&
    x.layers.length <= MaxMountLayers + 1 &&
    x.layers.every(validLayer)
  );
}

function validLayer(layer: unknown): layer is Layer {
  const l = layer as Partial<Layer> | undefined;
  return (
    !!l &&
    isDigest(l.digest) &&
    isDigest(l.diffID) &&
    Number.isSafeInteger(l.size) &&
    (l.size as number) >= 0 &&
    typeof l.mediaType === 'string' &&
    l.mediaType.length < 256
  );
}

/**
 * Reads the records of every --cache-from artifact (the first artifact to name a key wins) for
 * this build, with the solver's fetchLayer hook: it fetches a hit's missing layer blob from the
 * artifact that lists it. A cache that cannot be read is a warning, not a failure (the build then
 * just runs the steps).
 */
export async function importCache(
  store: Store,
  refs: CacheRef[],
  o: {
    opts: (ref: string) => Promise<remote.RemoteOptions>;
    reporter: Reporter;
    /** Where the artifacts' record blobs go (a dry run's scratch store: it writes nothing to `store`). */
    blobs?: Store['blobs'];
  },
): Promise<ImportedCache> {
  const byKey = new Map<Digest, StepRecord>();
  /** Where each layer of an imported record can be fetched. */
  const sources = new Map<Digest, { from: CacheRef; desc: Descriptor; blobs?: layout.LayoutBlobs }[]>();
  /** The content of cache mounts, by id (the first artifact to carry an id wins). */
  const mounts = new Map<
    string,
    { from: CacheRef; blobs?: layout.LayoutBlobs; layers: { desc: Descriptor; layer: Layer }[] }
  >();
  const restored = new Map<string, Promise<void>>();
  const restoredState = new Map<string, { layers: Layer[]; listing: MountListing }>();
  for (const c of refs) {
    const ref = where(c);
    let artifact;
    try {
      artifact =
        c.type === 'local'
          ? await readLocalCache(c)
          : await remote.pullCache<unknown>(o.blobs ?? store.blobs, c.ref, await o.opts(c.ref));
    } catch (e) {
      o.reporter.warn(`--cache-from ${ref}: ${(e as Error).message}; building without it`);
      continue;
    }
    if (!artifact) {
      const none = c.type === 'local' ? `no cache tagged "${c.tag}" there` : 'not found in the registry';
      o.reporter.warn(`--cache-from ${ref}: ${none}; building without it`);
      continue;
    }
    const blobs = 'blobs' in artifact ? artifact.blobs : undefined;
    let records = Array.isArray(artifact.records) ? artifact.records.filter(validRecord) : [];
    // An image's inline records name layers as its builder's store held them: take the image's own
    // blob of each (the same diffID, at the same place in the config and the manifest).
    const diffIDs = 'diffIDs' in artifact ? artifact.diffIDs : undefined;
    if (diffIDs) {
      const blobOf = new Map(diffIDs.map((d, i) => [d, artifact.layers[i]] as const));
      records = records.map((r) => {
        const l = r.layer && blobOf.get(r.layer.diffID);
        return l && r.layer
          ? { ...r, layer: { ...r.layer, digest: l.digest, size: l.size, mediaType: l.mediaType } }
          : r;
      });
    }
    const inArtifact = new Map(artifact.layers.map((d) => [d.digest, d]));
    for (const m of Array.isArray(artifact.records) ? artifact.records.filter(validMount) : []) {
      const layers = m.layers.map((layer) => ({ layer, desc: inArtifact.get(layer.digest)! }));
      if (layers.every((l) => l.desc) && !mounts.has(m.mount)) mounts.set(m.mount, { from: c, blobs, layers });
    }
    let imported = 0;
    for (const r of records) {
      // A record whose layer the artifact does not carry could never be used on a hit.
      if (r.layer && !inArtifact.has(r.layer.digest) && !(await store.blobs.has(r.layer.digest))) continue;
      if (r.layer) {
        const list = sources.get(r.layer.digest) ?? [];
        list.push({
          from: c,
          blobs,
          desc: inArtifact.get(r.layer.digest) ?? {
            mediaType: r.layer.mediaType,
            digest: r.layer.digest,
            size: r.layer.size,
          },
        });
        sources.set(r.layer.digest, list);
      }
      if (byKey.has(r.key) || (await store.cache.get(r.key))) continue; // this store's own record wins
      byKey.set(r.key, { layer: r.layer, created: r.created });
      imported++;
    }
    o.reporter.info(
      `importing cache from ${ref}: ${records.length} records, ${imported} new, ` +
        `${artifact.layers.length} layers available`,
    );
  }

  const record = (key: Digest) => byKey.get(key);
  const restore = async (id: string, dir: string) => {
    const m = mounts.get(id);
    if (!m || (await fsp.readdir(dir)).length > 0) return;
    try {
      let bytes = 0;
      if (m.blobs) for (const { desc } of m.layers) await copyFromLayout(store, m.blobs, desc);
      else {
        const descs = m.layers.map((l) => l.desc);
        const stats = await remote.fetchBlobs(store.blobs, m.from.ref, descs, await o.opts(m.from.ref));
        bytes = stats.bytesDownloaded;
      }
      // The layers are untrusted: unpackLayer writes beneath the directory, never through a link; in
      // order, a later layer's whiteouts removing what an earlier one had.
      for (const { layer } of m.layers)
        await unpackLayer(store.blobs.open(layer.digest), layer.mediaType, dir, {
          mode: 'apply',
          diffID: layer.diffID,
        });
      restoredState.set(id, { layers: m.layers.map((l) => l.layer), listing: await listMount(dir) });
      o.reporter.info(
        `restored cache mount ${id} from ${where(m.from)} ` + `(${m.layers.length} layers, ${bytes} bytes downloaded)`,
      );
    } catch (e) {
      o.reporter.warn(`--cache-from ${where(m.from)}: restoring cache mount ${id}: ${(e as Error).message}`);
    }
  };
  return {
    record,
    canFetch: (digest) => sources.has(digest),
    restoredMount: (id) => restoredState.get(id),
    restoreMount: (id, dir) => {
      let p = restored.get(id);
      if (!p) restored.set(id, (p = restore(id, dir)));
      return p;
    },
    fetchLayer: async (layer) => {
      for (const { from, desc, blobs } of sources.get(layer.digest) ?? []) {
        try {
          if (blobs) {
            await copyFromLayout(store, blobs, desc);
            o.reporter.info(`copied cached layer ${layer.digest} from ${where(from)} (${desc.size} bytes)`);
          } else {
            const stats = await remote.fetchBlobs(store.blobs, from.ref, [desc], await o.opts(from.ref));
            o.reporter.info(`fetched cached layer ${layer.digest} from ${from.ref} (${stats.bytesDownloaded} bytes)`);
          }
          if (await store.blobs.has(layer.digest)) return true;
        } catch (e) {
          o.reporter.warn(`fetching cached layer ${layer.digest} from ${where(from)}: ${(e as Error).message}`);
        }
      }
      return false;
    },
  };
}

/**
 * Pushes the records (and their layers) as a cache artifact to every --cache-to ref. Layers the
 * build stored uncompressed are shared compressed (`compression`, default gzip; made once in the
 * store and remembered), and the shared records name those blobs.
 */
export async function exportCache(
  store: Store,
  targets: CacheRef[],
  records: (SharedRecord & { inImage: boolean })[],
  o: {
    opts: (ref: string) => Promise<remote.RemoteOptions>;
    reporter: Reporter;
    compression?: Compression;
    /** --cache-from of this build: a mount it restored is exported as what changed since. */
    imported?: ImportedCache;
  },
): Promise<void> {
  for (const t of targets) {
    const chosen = new Map<Digest, SharedRecord>();
    const layers = new Map<Digest, Descriptor>();
    for (const r of records) {
      if (t.mode === 'min' && !r.inImage) continue;
      let layer = r.layer;
      if (layer) {
        if (!(await store.blobs.has(layer.digest))) continue; // pruned meanwhile: cannot share it
        layer = (await materialiseLayer(store, layer, o.compression ?? 'gzip')).layer;
        layers.set(layer.digest, { mediaType: layer.mediaType, digest: layer.digest, size: layer.size });
      }
      chosen.set(r.key, { key: r.key, layer, created: r.created });
    }
    const handle = o.reporter.step(`exporting cache to ${where(t)} (mode=${t.mode})`);
    try {
      const carried = await exportMounts(store, t, o.reporter, o.imported);
      for (const l of carried.flatMap((m) => m.layers))
        layers.set(l.digest, { mediaType: l.mediaType, digest: l.digest, size: l.size });
      // In digest order: stages run at once and layers are written in the background, so the order
      // records arrive in varies from build to build, and the artifact must not.
      const byDigest = <T>(m: Map<Digest, T>) => [...m.keys()].sort().map((k) => m.get(k)!);
      const artifact = { records: [...byDigest(chosen), ...carried], layers: byDigest(layers) };
      if (t.type === 'local') {
        const m = await remote.putCacheArtifact(store.blobs, artifact);
        const blobs = [m.config, ...artifact.layers.map((l) => l.digest), m.digest];
        const desc = { mediaType: MediaType.OciManifest, digest: m.digest, size: m.size };
        await layout.writeEntry(store, t.ref, blobs, desc, t.tag!);
        handle.log(`${chosen.size} records, ${carried.length} cache mounts, ${layers.size} layers written to ${t.ref}`);
        handle.done();
        continue;
      }
      const result = await remote.pushCache(store.blobs, t.ref, artifact, await o.opts(t.ref));
      handle.log(
        `${chosen.size} records, ${carried.length} cache mounts, ${layers.size} layers; ` +
          `uploaded ${result.stats.blobsUploaded} blobs (${result.stats.bytesUploaded} bytes), ` +
          `${result.stats.blobsMounted} mounted, ${result.stats.blobsSkipped} already in the registry`,
      );
      handle.done();
    } catch (e) {
      handle.fail((e as Error).message);
      throw e;
    }
  }
}

/**
 * Each `mounts=` id's content as layers (mount-layers.ts: what changed since this build restored it, on top
 * of the restored chain; else the whole directory). Never part of an image or a key: only the artifact
 * lists them.
 */
async function exportMounts(
  store: Store,
  t: CacheRef,
  reporter: Reporter,
  imported: ImportedCache | undefined,
): Promise<MountRecord[]> {
  const out: MountRecord[] = [];
  for (const id of [...t.mounts].sort()) {
    const { dir } = cacheMountPath(store, id);
    if (!existsSync(dir)) {
      reporter.warn(`--cache-to ${where(t)}: no cache mount with id ${id} in this store; not exported`);
      continue;
    }
    const layers = await mountLayers(store, dir, imported?.restoredMount(id));
    const size = layers.reduce((n, l) => n + l.size, 0);
    if (t.maxSize !== undefined && size > t.maxSize) {
      reporter.warn(`--cache-to ${where(t)}: cache mount ${id} is ${size} bytes, over max-size; not exported`);
      continue;
    }
    out.push({ mount: id, layers });
  }
  return out;
}
