// The build cache index: one JSON file per key under cache/<hex>.json, written atomically.
// A record's `blobs` and `snapshots` are roots for prune: they stay alive as long as the record
// exists. With a lease (leases.ts), a record written or read goes into it with what it names.
import { promises as fsp, readFileSync, unlinkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError, type CacheRecord, type Digest } from './types.js';
import { checkDigest, hexOf, isDigest, writeFileAtomic } from './fsutil.js';
import type { LeaseHolder } from './leases.js';

export class CacheIndex {
  constructor(
    readonly dir: string,
    private readonly tmpDir: string,
    private readonly held?: LeaseHolder,
  ) {}

  private file(key: Digest): string {
    return join(this.dir, `${hexOf(checkDigest(key, 'cache key'))}.json`);
  }

  async get(key: Digest): Promise<CacheRecord | undefined> {
    await this.held?.reuse('cache', key);
    let text: string;
    try {
      text = readFileSync(this.file(key), 'utf8'); // SmallFileIO (fsutil.ts)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    let record: CacheRecord;
    try {
      record = JSON.parse(text) as CacheRecord;
    } catch {
      // A torn record cannot happen with atomic writes, but a hand-edited one can: treat it as a miss.
      return undefined;
    }
    // A hit is used: what it names is leased before the caller checks that it exists.
    if (this.held?.lease)
      await this.held.reuseAll([
        ['blob', (record.blobs ?? []).filter(isDigest)],
        ['snapshot', (record.snapshots ?? []).filter(isDigest)],
      ]);
    return record;
  }

  async put(key: Digest, record: CacheRecord): Promise<void> {
    this.hold(record);
    // The key may name a record prune listed and is deciding on right now (a rewrite): wait for the
    // sweep before renaming over it, as for reused content (leases.ts), or prune deletes the new one.
    await this.held?.reuse('cache', key);
    await writeFileAtomic(this.file(key), JSON.stringify(record), this.tmpDir);
  }

  /**
   * put() of a record whose value is large (the --explain inputs of a copied tree: a pair per file), written
   * as it is made: `value` yields the value's JSON text in parts, and what the record names (`roots`) is asked
   * for once the value is written, so the producer may learn it on the way. Atomic as put(): temp, fsync, rename.
   */
  async putStream(
    key: Digest,
    value: AsyncIterable<string | Buffer>,
    roots: () => Promise<Omit<CacheRecord, 'value'>>,
  ): Promise<void> {
    await this.held?.reuse('cache', key);
    const hold = (r: Omit<CacheRecord, 'value'>) => this.hold(r);
    async function* record(): AsyncGenerator<string | Buffer> {
      yield '{"value":';
      yield* value;
      const r = await roots();
      hold(r);
      yield `,"blobs":${JSON.stringify(r.blobs)}${r.snapshots ? `,"snapshots":${JSON.stringify(r.snapshots)}` : ''}}`;
    }
    await writeFileAtomic(this.file(key), record(), this.tmpDir);
  }

  /** Checks what a record names and adds it to the lease, if any (the record keeps it from prune). */
  private hold(record: Omit<CacheRecord, 'value'>): void {
    for (const b of record.blobs) checkDigest(b, 'cache record blob');
    for (const s of record.snapshots ?? []) checkDigest(s, 'cache record snapshot');
    this.held?.addAll([
      ['blob', record.blobs],
      ['snapshot', record.snapshots ?? []],
    ]);
  }

  /**
   * Marks a record as used now (its file's mtime, which `tsbuild cache ls` shows as its last use and
   * `cache prune --filter until=` and `--keep-storage` go by). A record gone meanwhile is no error.
   */
  touch(key: Digest): void {
    const now = new Date();
    try {
      utimesSync(this.file(key), now, now); // SmallFileIO (fsutil.ts)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  async delete(key: Digest): Promise<boolean> {
    try {
      unlinkSync(this.file(key)); // SmallFileIO (fsutil.ts): prune deletes with gc-sweep held
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  /** Every record, with its file's inode and mtime (prune tells a record written since apart by them). */
  async list(): Promise<{ key: Digest; record: CacheRecord; mtimeMs: number; ino: number }[]> {
    const out: { key: Digest; record: CacheRecord; mtimeMs: number; ino: number }[] = [];
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw e;
    }
    for (const n of names) {
      const m = /^([a-f0-9]{64})\.json$/.exec(n);
      if (!m) continue;
      const key = `sha256:${m[1]}` as Digest;
      try {
        const [text, st] = await Promise.all([fsp.readFile(join(this.dir, n), 'utf8'), fsp.stat(join(this.dir, n))]);
        out.push({ key, record: JSON.parse(text) as CacheRecord, mtimeMs: st.mtimeMs, ino: st.ino });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // deleted meanwhile
        if (e instanceof SyntaxError) continue;
        throw e instanceof StoreError ? e : e;
      }
    }
    return out;
  }
}
