// Where blobs are known to live in registries, so a push can mount a blob from another
// repository of the same registry instead of uploading it. Pulls and pushes record what
// they saw. Persisted as JSON (e.g. <store root>/remote/locations.json):
//   {"version":1,"blobs":{"sha256:…":["localhost:5000/app","localhost:5000/base"]}}
// Newest first, at most 8 repositories per blob, at most 50 000 blobs; written atomically,
// merged with what another process wrote meanwhile. A stale entry costs one failed mount
// (the registry then starts a normal upload), never correctness.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '@tsbuild/sys';
import type { Digest } from '../types.js';
import { isDigest } from '../digest.js';

const perBlob = 8;
const maxBlobs = 50_000;

export class BlobLocations {
  private blobs = new Map<string, string[]>();
  private dirty = false;
  constructor(readonly file?: string) {}

  static async load(file?: string): Promise<BlobLocations> {
    const l = new BlobLocations(file);
    if (file) l.merge(await readFile(file));
    return l;
  }

  /** Remember that `digest` is in `registry/repository`. */
  add(registry: string, repository: string, digest: Digest): void {
    const where = `${registry}/${repository}`;
    // Already the newest entry (a repeated pull): nothing to save.
    if (this.blobs.get(digest)?.[0] === where) return;
    const list = (this.blobs.get(digest) ?? []).filter((r) => r !== where);
    list.unshift(where);
    this.blobs.delete(digest);
    this.blobs.set(digest, list.slice(0, perBlob));
    this.dirty = true;
  }

  /** Other repositories of the same registry known to hold `digest`. */
  sources(registry: string, repository: string, digest: Digest): string[] {
    const prefix = `${registry}/`;
    return (this.blobs.get(digest) ?? [])
      .filter((r) => r.startsWith(prefix) && r !== `${registry}/${repository}`)
      .map((r) => r.slice(prefix.length));
  }

  private merge(other: Map<string, string[]>): void {
    for (const [d, repos] of other) {
      const mine = this.blobs.get(d) ?? [];
      this.blobs.set(d, [...new Set([...mine, ...repos])].slice(0, perBlob));
    }
  }

  async save(): Promise<void> {
    if (!this.file || !this.dirty) return;
    const onDisk = await readFile(this.file);
    const mine = this.blobs;
    this.blobs = onDisk;
    this.merge(mine);
    // Keep the newest entries (Map order is insertion order; ours were added last).
    const entries = [...this.blobs].slice(-maxBlobs);
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    // A cache of hints: not durable (a crash may lose the latest, never tear it).
    await writeFileAtomic(this.file, JSON.stringify({ version: 1, blobs: Object.fromEntries(entries) }));
    this.dirty = false;
  }
}

async function readFile(file: string): Promise<Map<string, string[]>> {
  try {
    const parsed = JSON.parse(await fs.readFile(file, 'utf8')) as { blobs?: Record<string, unknown> };
    const m = new Map<string, string[]>();
    for (const [d, v] of Object.entries(parsed.blobs ?? {})) {
      if (isDigest(d) && Array.isArray(v))
        m.set(d, v.filter((x): x is string => typeof x === 'string').slice(0, perBlob));
    }
    return m;
  } catch {
    return new Map(); // missing or damaged: it is only a hint
  }
}
