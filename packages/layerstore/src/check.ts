// `tsbuild check`, like `git fsck`: verify everything in the store and say what is wrong.
//  - blobs: each file under blobs/sha256 hashes to its name;
//  - tags: everything a tag needs (index, manifests, configs, layers) is present, parses and has the
//    size its descriptor says (Images.verify);
//  - cache records: each parses and names only valid digests. A record whose blob is absent is not
//    damage: records imported with --cache-from fetch their layer on use, and prune drops them;
//  - snapshots: every entry under snapshots/ is a directory named by a chain ID (or its lock file or
//    boot sidecar);
//  - leases: those of dead processes (and removed containers) are removed, as prune does.
// With `repair`, what cannot be fixed is dropped: a corrupt blob, a tag whose image is incomplete, an
// unreadable record, a stray snapshot entry. Safe beside running builds: nothing they make is
// visible before it is complete, and a blob is re-checked right before it is removed.
import { createReadStream, promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { isDigest } from './fsutil.js';
import type { Digest } from './types.js';
import type { Store } from './store.js';

export interface CheckOptions {
  /** Drop what cannot be fixed (see above). */
  repair?: boolean;
}

export interface CheckReport {
  /** One line per thing found wrong. */
  problems: string[];
  /** What --repair removed, one line each. */
  repaired: string[];
  /** Damaged things (a tag may have several problems) still in the store: 0 means clean. */
  remaining: number;
  /** Things worth knowing that are not damage. */
  notes: string[];
  counts: { blobs: number; tags: number; cacheRecords: number; snapshots: number; leasesExpired: number };
}

export async function check(store: Store, opts: CheckOptions = {}): Promise<CheckReport> {
  const counts = { blobs: 0, tags: 0, cacheRecords: 0, snapshots: 0, leasesExpired: 0 };
  const report: CheckReport = { problems: [], repaired: [], remaining: 0, notes: [], counts };
  /** One damaged thing: its problems; with --repair, drop() removes it (true) and `dropped` says so. */
  const found = async (lines: string[], drop: () => Promise<boolean>, dropped: string): Promise<void> => {
    report.problems.push(...lines);
    if (opts.repair && (await drop())) report.repaired.push(dropped);
    else report.remaining++;
  };

  report.counts.leasesExpired = (await store.leases.live()).expired;

  // Blobs.
  for (const name of await fsp.readdir(store.blobs.dir)) {
    const path = join(store.blobs.dir, name);
    if (!/^[a-f0-9]{64}$/.test(name)) {
      const what = `blobs/sha256/${name} is not named by a sha256 digest`;
      await found([what], () => removeFile(path), `removed blobs/sha256/${name}`);
      continue;
    }
    const actual = await hashFile(path);
    if (actual === undefined) continue; // pruned meanwhile
    report.counts.blobs++;
    if (actual === name) continue;
    // Re-hashed right before removing: a blob is only ever replaced by the same bytes.
    const drop = async () => (await hashFile(path)) !== name && (await removeFile(path));
    const what = `blob sha256:${name} is corrupt: its content hashes to sha256:${actual}`;
    await found([what], drop, `removed corrupt blob sha256:${name}`);
  }

  // Tags.
  for (const t of await store.tags.list()) {
    report.counts.tags++;
    const damage = await store.images.verify(t.descriptor);
    const what = [...damage.missing.map((d) => `blob ${d} is missing`), ...damage.problems];
    if (what.length === 0) continue;
    // Only that very image, still broken: a build or pull may have set the tag anew meanwhile.
    const drop = async () => {
      const again = await store.images.verify(t.descriptor);
      if (again.missing.length === 0 && again.problems.length === 0) return false;
      return store.tags.delete(t.name, t.descriptor.digest);
    };
    await found(
      what.map((w) => `tag ${t.name}: ${w}`),
      drop,
      `removed tag ${t.name} (its image is incomplete)`,
    );
  }

  // Cache records.
  let dangling = 0;
  for (const name of await readdirOrEmpty(store.cache.dir)) {
    const path = join(store.cache.dir, name);
    const m = /^([a-f0-9]{64})\.json$/.exec(name);
    if (!m) {
      if (name.startsWith('.')) continue;
      await found([`cache/${name} is not a cache record name`], () => removeFile(path), `removed cache/${name}`);
      continue;
    }
    let text: string;
    try {
      text = await fsp.readFile(path, 'utf8');
    } catch {
      continue; // dropped meanwhile
    }
    report.counts.cacheRecords++;
    const why = recordProblem(text);
    if (why) {
      const key = `sha256:${m[1]}` as Digest;
      await found([`cache record ${key}: ${why}`], () => store.cache.delete(key), `removed cache record ${key}`);
      continue;
    }
    const blobs = (JSON.parse(text) as { blobs: Digest[] }).blobs;
    for (const b of blobs) {
      if ((await store.blobs.size(b)) === undefined) {
        dangling++;
        break;
      }
    }
  }
  if (dangling) {
    const why = 'imported from a registry cache and fetched on use, or left for prune';
    report.notes.push(`${dangling} cache records name a blob not in the store (${why})`);
  }

  // Snapshots.
  for (const name of await readdirOrEmpty(store.snapshotsDir)) {
    const path = join(store.snapshotsDir, name);
    if (/^[a-f0-9]{64}\.(?:lock|boot)$/.test(name)) continue; // a snapshot's lock and boot sidecar
    const st = await fsp.lstat(path).catch(() => undefined);
    if (!st) continue;
    if (/^[a-f0-9]{64}$/.test(name) && st.isDirectory()) {
      report.counts.snapshots++;
      continue;
    }
    const drop = () => fsp.rm(path, { recursive: true, force: true }).then(() => true);
    const what = `snapshots/${name} is not a snapshot directory named by a chain ID`;
    await found([what], drop, `removed snapshots/${name}`);
  }
  return report;
}

function recordProblem(text: string): string | undefined {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch (e) {
    return `not JSON (${(e as Error).message})`;
  }
  const o = r as { blobs?: unknown; snapshots?: unknown };
  if (!o || typeof o !== 'object' || !Array.isArray(o.blobs)) return 'has no blobs list';
  if (!o.blobs.every(isDigest)) return 'names a blob that is not a sha256 digest';
  const snapshotsOk = o.snapshots === undefined || (Array.isArray(o.snapshots) && o.snapshots.every(isDigest));
  if (!snapshotsOk) return 'names a snapshot that is not a chain ID';
  return undefined;
}

async function hashFile(path: string): Promise<string | undefined> {
  const h = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return h.digest('hex');
}

async function removeFile(path: string): Promise<boolean> {
  try {
    await fsp.unlink(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return (await fsp.readdir(dir)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}
