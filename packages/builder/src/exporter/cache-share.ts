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
import {
  isDigest,
  materialiseLayer,
  parseReference,
  remote,
  type Compression,
  type Descriptor,
  type Digest,
  type Layer,
  type Store,
} from '@tsbuild/layerstore';
import { UsageError } from '../errors.js';
import { parseCsv } from '../options.js';
import type { Reporter } from '../progress/index.js';

/** Records a registry cache holds, kept in memory for the build that asked for them (importCache). */
export interface ImportedCache {
  record(key: Digest): StepRecord | undefined;
  fetchLayer(layer: Layer): Promise<boolean>;
}

/** What a cache record of a filesystem step holds. */
export interface StepRecord {
  layer: Layer | null;
  created: string;
}

export interface CacheRef {
  ref: string;
  mode: 'min' | 'max';
}

/** One shareable record: the solver's cache record of a filesystem step under its key. */
export interface SharedRecord {
  key: Digest;
  layer: Layer | null;
  created: string;
}

/** `type=registry,ref=R[,mode=min|max]`, or a bare `R` (as buildx takes it for --cache-from). */
export function parseCacheOption(value: string, flag: '--cache-to' | '--cache-from'): CacheRef {
  const kv = value.includes('=')
    ? parseCsv(value, flag)
    : new Map([
        ['type', 'registry'],
        ['ref', value],
      ]);
  const type = kv.get('type') ?? 'registry';
  if (type !== 'registry') throw new UsageError(`${flag} ${value}: type=${type} is not supported (only type=registry)`);
  const ref = kv.get('ref');
  if (!ref) throw new UsageError(`${flag} ${value}: ref= is required`);
  try {
    parseReference(ref);
  } catch (e) {
    throw new UsageError(`${flag} ${value}: ${(e as Error).message}`);
  }
  const mode = kv.get('mode') ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new UsageError(`${flag} ${value}: mode=${mode} is not one of min, max`);
  if (flag === '--cache-from' && kv.has('mode'))
    throw new UsageError(`${flag} ${value}: mode= only applies to --cache-to`);
  for (const k of kv.keys())
    if (!['type', 'ref', 'mode'].includes(k)) throw new UsageError(`${flag} ${value}: unknown key "${k}"`);
  return { ref, mode };
}

/** A record from a registry is untrusted input: keep only well-formed ones. */
function validRecord(r: unknown): r is SharedRecord {
  if (!r || typeof r !== 'object') return false;
  const x = r as Partial<SharedRecord>;
  if (!isDigest(x.key) || typeof x.created !== 'string' || Number.isNaN(Date.parse(x.created))) return false;
  if (x.layer === null) return true;
  const l = x.layer as Partial<Layer> | undefined;
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
  o: { opts: (ref: string) => Promise<remote.RemoteOptions>; reporter: Reporter },
): Promise<ImportedCache> {
  const byKey = new Map<Digest, StepRecord>();
  /** Where each layer of an imported record can be fetched. */
  const sources = new Map<Digest, { ref: string; desc: Descriptor }[]>();
  for (const { ref } of refs) {
    let artifact;
    try {
      artifact = await remote.pullCache<unknown>(store.blobs, ref, await o.opts(ref));
    } catch (e) {
      o.reporter.warn(`--cache-from ${ref}: ${(e as Error).message}; building without it`);
      continue;
    }
    if (!artifact) {
      o.reporter.warn(`--cache-from ${ref}: not found in the registry; building without it`);
      continue;
    }
    const records = Array.isArray(artifact.records) ? artifact.records.filter(validRecord) : [];
    const inArtifact = new Map(artifact.layers.map((d) => [d.digest, d]));
    let imported = 0;
    for (const r of records) {
      // A record whose layer the artifact does not carry could never be used on a hit.
      if (r.layer && !inArtifact.has(r.layer.digest) && !(await store.blobs.has(r.layer.digest))) continue;
      if (r.layer) {
        const list = sources.get(r.layer.digest) ?? [];
        list.push({
          ref,
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
      `importing cache from ${ref}: ${records.length} records, ${imported} new, ${artifact.layers.length} layers ` +
        `available`,
    );
  }

  const record = (key: Digest) => byKey.get(key);
  return {
    record,
    fetchLayer: async (layer) => {
      for (const { ref, desc } of sources.get(layer.digest) ?? []) {
        try {
          const stats = await remote.fetchBlobs(store.blobs, ref, [desc], await o.opts(ref));
          o.reporter.info(`fetched cached layer ${layer.digest} from ${ref} (${stats.bytesDownloaded} bytes)`);
          if (await store.blobs.has(layer.digest)) return true;
        } catch (e) {
          o.reporter.warn(`fetching cached layer ${layer.digest} from ${ref}: ${(e as Error).message}`);
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
  o: { opts: (ref: string) => Promise<remote.RemoteOptions>; reporter: Reporter; compression?: Compression },
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
    const handle = o.reporter.step(`exporting cache to ${t.ref} (mode=${t.mode})`);
    try {
      // In digest order: stages run at once and layers are written in the background, so the order
      // records arrive in varies from build to build, and the artifact must not.
      const byDigest = <T>(m: Map<Digest, T>) => [...m.keys()].sort().map((k) => m.get(k)!);
      const result = await remote.pushCache(
        store.blobs,
        t.ref,
        { records: byDigest(chosen), layers: byDigest(layers) },
        await o.opts(t.ref),
      );
      handle.log(
        `${chosen.size} records, ${layers.size} layers; uploaded ${result.stats.blobsUploaded} blobs ` +
          `(${result.stats.bytesUploaded} bytes), ${result.stats.blobsMounted} mounted, ` +
          `${result.stats.blobsSkipped} already in the registry`,
      );
      handle.done();
    } catch (e) {
      handle.fail((e as Error).message);
      throw e;
    }
  }
}
