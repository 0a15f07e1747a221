// `tsbuild cache ls|du|prune`: the build cache's records, as `docker buildx du` / `buildx prune` show and
// trim them. A record (solver/solver.ts) is one filesystem step's result: its layer (or none) under
// the step's cache key. Its last use is its file's mtime: a build's hit touches it (CacheIndex.touch).
// Prune picks records and hands them to store.prune, which drops them under its locks (never one a
// running build holds) and collects what no tag, record or lease reaches.
import type { Digest, Layer, Store } from '@tsbuild/layerstore';
import { bool, list, parseArgs, str } from '../args.js';
import { flagsOf } from '../flags.js';
import { openStore } from '../root.js';
import { UsageError } from '../../errors.js';
import { parseCsv, parseSize } from '../../options.js';
import { ago, humanSize, table } from '../table.js';
import { parseDuration } from './images.js';
import { sha256 } from '../../solver/cachekey.js';

/** One step record, as the cache commands see it. */
export interface StepEntry {
  key: Digest;
  layer: Layer | null;
  /** Bytes of its layer blob in the store (0: no layer, or the blob is gone). */
  size: number;
  /** When a build last made or hit it (its file's mtime, in ms as stat gives it). */
  lastUsedMs: number;
  created: string;
  step: string | null;
  /** A tagged image has its layer: deleting the record frees nothing. */
  inImage: boolean;
}

/** The step records (not --explain's pointers and inputs), most recently used first. */
export async function stepEntries(
  store: Store,
  listed?: { key: Digest; record: { value?: unknown }; mtimeMs: number }[],
): Promise<StepEntry[]> {
  const imageLayers = new Set<Digest>();
  for (const i of await store.images.list()) for (const l of i.image?.layers ?? []) imageLayers.add(l.digest);
  const out: StepEntry[] = [];
  for (const { key, record, mtimeMs } of listed ?? (await store.cache.list())) {
    const v = record.value as { layer?: unknown; created?: unknown; step?: unknown } | undefined;
    if (!v || typeof v.created !== 'string' || !('layer' in v)) continue; // a pointer or inputs record
    const layer = (v.layer ?? null) as Layer | null;
    let size = 0;
    if (layer) size = (await store.blobs.size(layer.digest)) ?? 0;
    out.push({
      key,
      layer,
      size,
      lastUsedMs: mtimeMs,
      created: v.created,
      step: typeof v.step === 'string' ? v.step : null,
      inImage: !!layer && imageLayers.has(layer.digest),
    });
  }
  return out.sort((a, b) => b.lastUsedMs - a.lastUsedMs || (a.key < b.key ? -1 : 1));
}

export async function cacheCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'ls':
    case 'list':
      return ls(rest);
    case 'du':
      return du(rest);
    case 'prune':
      return pruneCache(rest);
    default:
      throw new UsageError(
        `${sub === undefined ? '"tsbuild cache" needs a subcommand' : `unknown cache subcommand "${sub}"`}` +
          '\nUsage: tsbuild cache ls|du|prune [OPTIONS]',
      );
  }
}

function noArgs(p: { positionals: string[] }, sub: string): void {
  if (p.positionals.length) throw new UsageError(`"tsbuild cache ${sub}" takes no arguments`);
}

function format(p: ReturnType<typeof parseArgs>): 'table' | 'json' {
  const f = str(p, 'format') ?? 'table';
  if (f !== 'table' && f !== 'json') throw new UsageError(`--format: "${f}" is not one of table, json`);
  return f;
}

async function ls(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('cache', 'ls'));
  noArgs(p, 'ls');
  const fmt = format(p);
  const store = await openStore(str(p, 'root'));
  const entries = await stepEntries(store);
  if (fmt === 'json') {
    for (const e of entries)
      process.stdout.write(
        JSON.stringify({
          id: e.key,
          size: e.size,
          lastUsed: new Date(e.lastUsedMs).toISOString(),
          created: e.created,
          step: e.step,
          layer: e.layer?.digest ?? null,
          inImage: e.inImage,
        }) + '\n',
      );
    return 0;
  }
  const id = (k: Digest) => (bool(p, 'no-trunc') ? k : k.slice(7, 19));
  const rows = [['CACHE ID', 'SIZE', 'LAST USED', 'IN IMAGE', 'CREATED BY']];
  for (const e of entries)
    rows.push([
      id(e.key),
      humanSize(e.size),
      ago(new Date(e.lastUsedMs).toISOString()),
      e.inImage ? 'yes' : 'no',
      e.step ?? '-',
    ]);
  process.stdout.write(table(rows));
  return 0;
}

/** Bytes of each distinct layer blob the entries name (records that share a layer count it once). */
function uniqueBytes(entries: StepEntry[]): number {
  const seen = new Map<string, number>();
  for (const e of entries) if (e.layer) seen.set(e.layer.digest, e.size);
  let n = 0;
  for (const v of seen.values()) n += v;
  return n;
}

async function du(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('cache', 'du'));
  noArgs(p, 'du');
  const fmt = format(p);
  const store = await openStore(str(p, 'root'));
  const entries = await stepEntries(store);
  const total = uniqueBytes(entries);
  const reclaimable = uniqueBytes(entries.filter((e) => !e.inImage));
  if (fmt === 'json') {
    process.stdout.write(JSON.stringify({ records: entries.length, total, reclaimable }) + '\n');
    return 0;
  }
  process.stdout.write(
    table([
      ['Records:', String(entries.length)],
      ['Reclaimable:', humanSize(reclaimable)],
      ['Total:', humanSize(total)],
    ]),
  );
  return 0;
}

/**
 * What `cache prune` deletes: by default the records whose layer no tagged image has (the cache
 * that serves rebuilds only); --all every record. --filter until=D keeps those used within D;
 * --keep-storage SIZE deletes the least recently used of the rest only until what remains is at
 * most SIZE.
 */
export function choosePrune(
  entries: StepEntry[],
  o: { all: boolean; untilMs?: number; keepStorage?: number; now: number },
): StepEntry[] {
  let candidates = entries.filter((e) => o.all || !e.inImage);
  if (o.untilMs !== undefined) candidates = candidates.filter((e) => o.now - e.lastUsedMs >= o.untilMs!);
  if (o.keepStorage === undefined) return candidates;
  // Least recently used first, until the records that stay fit.
  const doomed = new Set<StepEntry>();
  const oldestFirst = [...candidates].sort((a, b) => a.lastUsedMs - b.lastUsedMs);
  for (const e of oldestFirst) {
    if (uniqueBytes(entries.filter((x) => !doomed.has(x))) <= o.keepStorage) break;
    doomed.add(e);
  }
  return candidates.filter((e) => doomed.has(e));
}

async function pruneCache(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('cache', 'prune'));
  noArgs(p, 'prune');
  let untilMs: number | undefined;
  for (const f of list(p, 'filter')) {
    const kv = parseCsv(f, '--filter');
    for (const [k, v] of kv) {
      if (k !== 'until') throw new UsageError(`--filter ${f}: unknown filter "${k}" (only until=DURATION)`);
      untilMs = parseDuration(v, '--filter until');
    }
  }
  const ks = str(p, 'keep-storage');
  const keepStorage = ks === undefined ? undefined : parseSize(ks, '--keep-storage');
  const store = await openStore(str(p, 'root'));
  let chosen = 0;
  // The records are chosen from prune's own listing and dropped by prune, under its locks: never one a
  // running build holds (its lease), nor one a build made or used again meanwhile; then prune collects
  // what nothing reaches (no grace: what is in use is leased).
  const r = await store.prune({
    gracePeriodMs: 0,
    dropCache: async (records) => {
      const picked = choosePrune(await stepEntries(store, records), {
        all: bool(p, 'all'),
        untilMs,
        keepStorage,
        now: Date.now(),
      });
      chosen = picked.length;
      // A step's --explain inputs go with it (solver.ts: inputsId).
      return picked.flatMap((e): Digest[] => [e.key, `sha256:${sha256(`inputs\0${e.key}`)}`]);
    },
  });
  process.stdout.write(
    `Deleted ${r.cacheRecords} cache records (of ${chosen} chosen, with their --explain inputs), ` +
      `${r.blobs} blobs, ${r.snapshots} snapshots\nTotal reclaimed space: ${humanSize(r.bytes)}\n`,
  );
  return 0;
}
