// The build cache index: one JSON file per key under cache/<hex>.json, written atomically.
// A record's `blobs` are roots for prune: they stay alive as long as the record exists.
import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError, type CacheRecord, type Digest } from './types.js';
import { checkDigest, hexOf, writeFileAtomic } from './fsutil.js';

export class CacheIndex {
  constructor(readonly dir: string, private readonly tmpDir: string) {}

  private file(key: Digest): string {
    return join(this.dir, `${hexOf(checkDigest(key, 'cache key'))}.json`);
  }

  async get(key: Digest): Promise<CacheRecord | undefined> {
    let text: string;
    try {
      text = readFileSync(this.file(key), 'utf8'); // SmallFileIO (fsutil.ts)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      return JSON.parse(text) as CacheRecord;
    } catch {
      // A torn record cannot happen with atomic writes, but a hand-edited one can: treat it as a miss.
      return undefined;
    }
  }

  async put(key: Digest, record: CacheRecord): Promise<void> {
    for (const b of record.blobs) checkDigest(b, 'cache record blob');
    await writeFileAtomic(this.file(key), JSON.stringify(record), this.tmpDir);
  }

  async delete(key: Digest): Promise<boolean> {
    try {
      await fsp.unlink(this.file(key));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  async list(): Promise<{ key: Digest; record: CacheRecord; mtimeMs: number }[]> {
    const out: { key: Digest; record: CacheRecord; mtimeMs: number }[] = [];
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
        out.push({ key, record: JSON.parse(text) as CacheRecord, mtimeMs: st.mtimeMs });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // deleted meanwhile
        if (e instanceof SyntaxError) continue;
        throw e instanceof StoreError ? e : e;
      }
    }
    return out;
  }
}
