// Content hashes of context files, remembered by (inode, size, mtime, ctime) so that an
// unchanged file is never read again. One JSON file per context directory in the store;
// written atomically, and only when something was hashed anew.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp, type BigIntStats } from 'node:fs';
import { join } from 'node:path';

type Row = [ino: string, size: string, mtimeNs: string, ctimeNs: string, hash: string];

export class StatCache {
  private rows = new Map<string, Row>();
  private seen = new Set<string>();
  private dirty = false;

  private constructor(private readonly file: string | undefined) {}

  static async load(dir: string | undefined, contextDir: string): Promise<StatCache> {
    if (!dir) return new StatCache(undefined);
    const file = join(dir, createHash('sha256').update(contextDir).digest('hex').slice(0, 32) + '.json');
    const cache = new StatCache(file);
    try {
      const data = JSON.parse(await fsp.readFile(file, 'utf8')) as { version: number; rows: Record<string, Row> };
      if (data.version === 1) cache.rows = new Map(Object.entries(data.rows));
    } catch {
      // Missing or unreadable: start empty; it is only a cache.
    }
    return cache;
  }

  /** sha256 of the file's content, from the cache when its stat is unchanged. */
  async hash(rel: string, abs: string, st: BigIntStats): Promise<string> {
    this.seen.add(rel);
    const row = this.rows.get(rel);
    const ino = String(st.ino), size = String(st.size), mtime = String(st.mtimeNs), ctime = String(st.ctimeNs);
    if (row && row[0] === ino && row[1] === size && row[2] === mtime && row[3] === ctime) return row[4];
    const hash = await hashFile(abs);
    this.rows.set(rel, [ino, size, mtime, ctime, hash]);
    this.dirty = true;
    return hash;
  }

  async save(): Promise<void> {
    if (!this.file || !this.dirty) return;
    // Keep rows not seen in this build too: another COPY may read them next time.
    const tmp = `${this.file}.${process.pid}.tmp`;
    await fsp.mkdir(join(this.file, '..'), { recursive: true });
    await fsp.writeFile(tmp, JSON.stringify({ version: 1, rows: Object.fromEntries(this.rows) }));
    await fsp.rename(tmp, this.file);
    this.dirty = false;
  }
}

export function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}
