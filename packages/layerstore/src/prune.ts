// Garbage collection: mark everything reachable, sweep the rest.
//
// Roots: the tags in index.json; every build-cache record's blobs; every digest named in a
// containers/*.json file (a container keeps its image). From a root, manifests and indexes are followed
// to configs and layers; a config's diff_ids give the chain IDs of the snapshots it needs.
//
// Concurrency protocol (no process-wide read lock is needed by writers):
//  1. Prune runs under the exclusive `gc` lock (one prune at a time).
//  2. Writers put bytes in tmp/ first. Temp names carry the owner's pid and start time; prune and
//     Store.open remove only temp entries whose owner is dead (or unnamed ones older than maxTempAgeMs).
//  3. A committed blob is renamed into blobs/ with a fresh mtime (rename over an existing copy refreshes
//     it too); a writer about to reference an existing blob (images.write) first touches it, then checks
//     it still exists. Prune never removes a blob, cache record or snapshot younger than `gracePeriodMs`
//     (default 15 min), and re-stats each candidate right before unlinking it. So a writer has the grace
//     period to make a fresh blob reachable (cache.put / tags.set) — the builder records cache entries as
//     each step finishes, well within it. The remaining window is the microseconds between prune's
//     re-stat and unlink, in which a writer would have to touch that very unreferenced blob.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Digest } from './types.js';
import { isDigest, parseOwner, pidAlive } from './fsutil.js';
import type { Store } from './store.js';

export interface PruneOptions {
  /** Keep unreachable things younger than this (default 15 minutes). Tests use 0. */
  gracePeriodMs?: number;
  /** Also drop every build-cache record (like `docker builder prune -a`). */
  allCache?: boolean;
  /** Remove temp entries that carry no owner and are older than this (default 1 hour). */
  maxTempAgeMs?: number;
}

export interface PruneReport {
  blobs: number;
  bytes: number;
  snapshots: number;
  cacheRecords: number;
  temp: number;
}

const JSON_SNIFF_LIMIT = 4 << 20;

export function chainIDs(diffIDs: Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIDs) {
    out.push(out.length === 0 ? d : (`sha256:${createHash('sha256').update(`${out[out.length - 1]} ${d}`).digest('hex')}` as Digest));
  }
  return out;
}

export async function prune(store: Store, opts: PruneOptions = {}): Promise<PruneReport> {
  const grace = opts.gracePeriodMs ?? 15 * 60_000;
  const report: PruneReport = { blobs: 0, bytes: 0, snapshots: 0, cacheRecords: 0, temp: 0 };
  return store.withLock('gc', async () => {
    const now = Date.now();
    const old = (mtimeMs: number) => now - mtimeMs >= grace;

    // Roots.
    const roots = new Set<Digest>();
    for (const t of await store.tags.list()) roots.add(t.descriptor.digest);
    const present = new Set(await store.blobs.list());
    for (const { key, record, mtimeMs } of await store.cache.list()) {
      const dangling = record.blobs.some((b) => !present.has(b));
      if ((opts.allCache || dangling) && old(mtimeMs)) {
        if (await store.cache.delete(key)) report.cacheRecords++;
        continue;
      }
      for (const b of record.blobs) roots.add(b);
    }
    for (const d of await containerDigests(store.containersDir)) roots.add(d);

    // Mark.
    const marked = new Set<Digest>();
    const chains = new Set<string>();
    const queue = [...roots];
    while (queue.length) {
      const d = queue.pop()!;
      if (marked.has(d)) continue;
      marked.add(d);
      const doc = await sniffJSON(store, d);
      if (!doc || typeof doc !== 'object') continue;
      const o = doc as { manifests?: { digest?: unknown }[]; config?: { digest?: unknown }; layers?: { digest?: unknown }[]; rootfs?: { diff_ids?: unknown } };
      for (const m of Array.isArray(o.manifests) ? o.manifests : []) if (isDigest(m?.digest)) queue.push(m.digest);
      if (o.config && isDigest(o.config.digest)) queue.push(o.config.digest);
      for (const l of Array.isArray(o.layers) ? o.layers : []) if (isDigest(l?.digest)) queue.push(l.digest);
      if (o.rootfs && Array.isArray(o.rootfs.diff_ids)) for (const c of chainIDs(o.rootfs.diff_ids.filter(isDigest))) chains.add(c);
    }

    // Sweep blobs.
    for (const d of present) {
      if (marked.has(d)) continue;
      const p = store.blobs.path(d);
      try {
        const st = await fsp.stat(p); // re-stat right before unlinking (protocol step 3)
        if (!old(st.mtimeMs)) continue;
        await fsp.unlink(p);
        report.blobs++;
        report.bytes += st.size;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }

    // Sweep snapshots no kept config needs (a snapshot is fresh while younger than the grace period).
    for (const s of await store.snapshots.list()) {
      if (chains.has(s.chainID)) continue;
      try {
        if (!old((await fsp.stat(s.path)).mtimeMs)) continue;
      } catch { /* gone */ }
      await store.snapshots.remove(s.chainID);
      report.snapshots++;
    }

    report.temp = await cleanTemp(store.tmpDir, { maxAgeMs: opts.maxTempAgeMs ?? 60 * 60_000 });
    report.temp += await store.snapshots.cleanup();
    return report;
  });
}

/** Remove temp files/dirs whose owner process is dead, and ownerless ones older than maxAgeMs. */
export async function cleanTemp(tmpDir: string, opts: { maxAgeMs: number }): Promise<number> {
  let removed = 0;
  let names: string[];
  try {
    names = await fsp.readdir(tmpDir);
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
      stale = !(await pidAlive(owner.pid, owner.start === '0' ? undefined : owner.start));
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

async function sniffJSON(store: Store, d: Digest): Promise<unknown> {
  const size = await store.blobs.size(d);
  if (size === undefined || size > JSON_SNIFF_LIMIT) return undefined;
  const fh = await fsp.open(store.blobs.path(d), 'r');
  try {
    const first = Buffer.alloc(1);
    await fh.read(first, 0, 1, 0);
    if (first[0] !== 0x7b /* { */) return undefined;
  } finally {
    await fh.close();
  }
  try {
    return JSON.parse((await store.blobs.read(d)).toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Every sha256 digest mentioned anywhere in containers/*.json (or containers/<id>/*.json). */
async function containerDigests(dir: string): Promise<Digest[]> {
  const out: Digest[] = [];
  const visit = (v: unknown): void => {
    if (isDigest(v)) out.push(v);
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') Object.values(v).forEach(visit);
  };
  const walk = async (d: string, depth: number): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fsp.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory() && depth < 1) await walk(p, depth + 1);
      else if (e.isFile() && e.name.endsWith('.json')) {
        try {
          visit(JSON.parse(await fsp.readFile(p, 'utf8')));
        } catch { /* being written or not ours */ }
      }
    }
  };
  await walk(dir, 0);
  return out;
}
