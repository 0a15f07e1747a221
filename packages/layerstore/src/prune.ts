// Garbage collection: mark everything reachable, sweep the rest.
//
// Roots: the tags in index.json; every build-cache record's blobs and snapshots; everything a live
// lease holds (leases.ts: running builds, pushes, pulls, runs, commits, exports, and containers,
// whose leases last as long as they do). From a root, manifests and indexes are followed to configs
// and layers; a config's diff_ids give the chain IDs of the snapshots it needs.
//
// Concurrency protocol (writers never take a lock to write; see leases.ts for their side):
//  1. Prune runs under the exclusive `gc` lock (one prune at a time).
//  2. It lists its candidates first: cache records, then blobs, then snapshots. A record is written
//     only after its blobs, so the blobs of a listed record are listed too.
//  3. Under the `gc-sweep` lock, and only for that: it reads the leases (removing those whose owner
//     is dead), then the tags, the listed records and any record written since the listing (whose
//     writer may have dropped its lease before the leases were read), marks, and decides: unlinks
//     blobs and records, and renames snapshots aside. A writer adds content to its lease before the content becomes
//     visible, and reused content before it checks that the content is still there, after waiting
//     for `gc-sweep` to be free; so nothing a live lease names is ever removed.
//  4. The slow part, removing renamed-aside snapshot trees, happens after the lock is released.
//  Writers put bytes in tmp/ first. Temp names carry the owner's pid and start time; prune and
//  Store.open remove only temp entries whose owner is dead (or unnamed ones older than maxTempAgeMs).
//  The grace period is a preference (keep recent garbage a while), not what keeps content in use.
import {
  closeSync,
  promises as fsp,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import type { CacheRecord, Digest } from './types.js';
import { isDigest, parseOwner, pidAlive } from './fsutil.js';
import { SweepLock } from './leases.js';
import { chainIDs } from './snapshot/chain-id.js';
import type { FileBlobStore } from './blobs.js';
import type { CacheIndex } from './cache.js';
import type { Leases } from './leases.js';
import type { Tags } from './tags.js';
import type { Snapshots } from './snapshot/snapshots.js';

/** The parts of the store prune works on (the Store is one; prune does not import it: store.ts calls prune). */
export interface PruneTarget {
  readonly blobs: FileBlobStore;
  readonly tags: Tags;
  readonly cache: CacheIndex;
  readonly snapshots: Snapshots;
  readonly leases: Leases;
  readonly tmpDir: string;
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

export interface PruneOptions {
  /** Keep unreachable things younger than this (default 15 minutes). Tests use 0. */
  gracePeriodMs?: number;
  /** Also drop every build-cache record (like `docker builder prune -a`). */
  allCache?: boolean;
  /**
   * Also drop the build-cache records this picks from the listing (`tsbuild cache prune`'s filters), under
   * the same rules as every record prune drops: never one a live lease holds or one rewritten since.
   */
  dropCache?: (records: { key: Digest; record: CacheRecord; mtimeMs: number }[]) => Promise<Iterable<Digest>>;
  /** Remove temp entries that carry no owner and are older than this (default 1 hour). */
  maxTempAgeMs?: number;
}

export interface PruneReport {
  blobs: number;
  bytes: number;
  snapshots: number;
  cacheRecords: number;
  temp: number;
  /** Leases removed because their owner is gone. */
  leases: number;
}

const JSON_SNIFF_LIMIT = 4 << 20;

export async function prune(store: PruneTarget, opts: PruneOptions = {}): Promise<PruneReport> {
  const grace = opts.gracePeriodMs ?? 15 * 60_000;
  const report: PruneReport = { blobs: 0, bytes: 0, snapshots: 0, cacheRecords: 0, temp: 0, leases: 0 };
  return store.withLock('gc', async () => {
    const old = (mtimeMs: number) => Date.now() - mtimeMs >= grace;

    // Candidates (protocol step 2): what appears after this is not one.
    const records = await store.cache.list();
    const chosen = new Set(opts.dropCache ? await opts.dropCache(records) : []);
    const present = new Set(await store.blobs.list());
    const snapshots = await store.snapshots.list();

    const trash: string[] = [];
    await store.withLock(SweepLock, async () => {
      const leased = await store.leases.live();
      report.leases = leased.expired;
      const roots = new Set<Digest>(leased.blob);
      const chains = new Set<Digest>(leased.snapshot);
      const keep = (record: CacheRecord) => {
        for (const b of Array.isArray(record.blobs) ? record.blobs.filter(isDigest) : []) roots.add(b);
        for (const c of Array.isArray(record.snapshots) ? record.snapshots.filter(isDigest) : []) chains.add(c);
      };
      for (const t of await store.tags.list()) roots.add(t.descriptor.digest);
      // Records written (or rewritten) since the listing: their writer may have ended, its lease
      // gone, before the leases were read, so only the record keeps their content now. Roots, and
      // not deleted this time.
      const since = await recordsWrittenSince(store, records);
      for (const record of since.values()) keep(record);
      for (const { key, record, mtimeMs } of records) {
        const blobs = Array.isArray(record.blobs) ? record.blobs.filter(isDigest) : [];
        const dangling = blobs.some((b) => !present.has(b));
        if (since.has(key)) continue;
        if (!leased.cache.has(key) && (opts.allCache || dangling || chosen.has(key)) && old(mtimeMs)) {
          if (await store.cache.delete(key)) report.cacheRecords++;
          continue;
        }
        keep(record);
      }

      // Mark.
      const marked = new Set<Digest>();
      const queue = [...roots];
      while (queue.length) {
        const d = queue.pop()!;
        if (marked.has(d)) continue;
        marked.add(d);
        const doc = await sniffJSON(store, d);
        if (!doc || typeof doc !== 'object') continue;
        type Ref = { digest?: unknown };
        const o = doc as { manifests?: Ref[]; config?: Ref; layers?: Ref[]; rootfs?: { diff_ids?: unknown } };
        for (const m of Array.isArray(o.manifests) ? o.manifests : []) if (isDigest(m?.digest)) queue.push(m.digest);
        if (o.config && isDigest(o.config.digest)) queue.push(o.config.digest);
        for (const l of Array.isArray(o.layers) ? o.layers : []) if (isDigest(l?.digest)) queue.push(l.digest);
        const diffIDs = o.rootfs && Array.isArray(o.rootfs.diff_ids) ? o.rootfs.diff_ids.filter(isDigest) : [];
        for (const c of chainIDs(diffIDs)) chains.add(c);
      }

      // Sweep blobs: the unlink decisions.
      for (const d of present) {
        if (marked.has(d)) continue;
        const p = store.blobs.path(d);
        try {
          // SmallFileIO (fsutil.ts): synchronous, as every call here is made with gc-sweep held.
          const st = statSync(p);
          if (!old(st.mtimeMs)) continue;
          unlinkSync(p);
          report.blobs++;
          report.bytes += st.size;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
      }

      // Snapshots nothing needs are renamed aside here and removed after the lock.
      for (const s of snapshots) {
        if (chains.has(s.chainID)) continue;
        try {
          if (!old(statSync(s.path).mtimeMs)) continue;
        } catch {
          continue; // gone already
        }
        const aside = await store.snapshots.moveAside(s.chainID);
        if (!aside) continue;
        trash.push(aside);
        report.snapshots++;
      }
    });
    for (const t of trash) await fsp.rm(t, { recursive: true, force: true });

    report.temp = await cleanTemp(store.tmpDir, { maxAgeMs: opts.maxTempAgeMs ?? 60 * 60_000 });
    report.temp += await store.snapshots.cleanup();
    return report;
  });
}

/**
 * The records whose file is not the one listed (new, or renamed over since: a new inode or mtime),
 * read again. One readdir and a stat per record, under the sweep lock; only changed ones are read.
 */
async function recordsWrittenSince(
  store: PruneTarget,
  listed: { key: Digest; mtimeMs: number; ino: number }[],
): Promise<Map<Digest, CacheRecord>> {
  const before = new Map(listed.map((r) => [r.key, r]));
  const out = new Map<Digest, CacheRecord>();
  let names: string[];
  try {
    names = await fsp.readdir(store.cache.dir);
  } catch {
    return out;
  }
  for (const n of names) {
    const m = /^([a-f0-9]{64})\.json$/.exec(n);
    if (!m) continue;
    const key = `sha256:${m[1]}` as Digest;
    const path = join(store.cache.dir, n);
    try {
      const st = statSync(path); // SmallFileIO (fsutil.ts)
      const was = before.get(key);
      if (was && was.ino === st.ino && was.mtimeMs === st.mtimeMs) continue;
      out.set(key, JSON.parse(readFileSync(path, 'utf8')) as CacheRecord);
    } catch {
      /* removed meanwhile, or not JSON (check reports it) */
    }
  }
  return out;
}

/** Remove temp files/dirs whose owner process is dead, and ownerless ones older than maxAgeMs. */
export async function cleanTemp(tmpDir: string, opts: { maxAgeMs: number }): Promise<number> {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(tmpDir); // SmallFileIO (fsutil.ts): at every Store.open
  } catch {
    return 0;
  }
  for (const n of names) {
    const p = join(tmpDir, n);
    // The snapshotter names its own temp dirs (unpack-*, trash-*) and cleans them (Snapshots.cleanup).
    if (/^(?:unpack|trash)-/.test(n)) continue;
    const owner = parseOwner(n);
    let stale: boolean;
    if (owner) {
      stale = !pidAlive(owner.pid, owner.start === '0' ? undefined : owner.start);
    } else {
      try {
        stale = Date.now() - (await fsp.lstat(p)).mtimeMs > opts.maxAgeMs;
      } catch {
        continue;
      }
    }
    if (!stale) continue;
    await fsp.rm(p, { recursive: true, force: true }).catch(() => {});
    removed++;
  }
  return removed;
}

async function sniffJSON(store: PruneTarget, d: Digest): Promise<unknown> {
  let size: number;
  try {
    size = statSync(store.blobs.path(d)).size; // SmallFileIO (fsutil.ts)
  } catch {
    return undefined;
  }
  if (size > JSON_SNIFF_LIMIT) return undefined;
  let fd: number;
  try {
    fd = openSync(store.blobs.path(d), 'r');
  } catch {
    return undefined; // removed by check --repair meanwhile
  }
  try {
    const first = Buffer.alloc(1);
    readSync(fd, first, 0, 1, 0);
    if (first[0] !== 0x7b /* { */) return undefined;
  } finally {
    closeSync(fd);
  }
  try {
    return JSON.parse((await store.blobs.read(d)).toString('utf8'));
  } catch {
    return undefined;
  }
}
