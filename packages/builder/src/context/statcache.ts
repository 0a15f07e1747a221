// Content hashes of context files, remembered by (inode, size, mtime, ctime) so that an
// unchanged file is never read again. One file per context directory in the store, written
// atomically, and only when something was hashed anew.
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createReadStream, promises as fsp, readFileSync } from 'node:fs';
import type { FileInfo } from './walk.js';
import { join } from 'node:path';

/**
 * One line per file: `path NUL ino size mtime ctime NUL sha256`. A text file rather than JSON
 * because parsing 20,000 small arrays was a tenth of a cached rebuild.
 */
export class StatCache {
  private rows = new Map<string, string>();
  private dirty = false;

  private constructor(private readonly file: string | undefined) {}

  static async load(dir: string | undefined, contextDir: string): Promise<StatCache> {
    if (!dir) return new StatCache(undefined);
    const file = join(dir, createHash('sha256').update(contextDir).digest('hex').slice(0, 32) + '.v3');
    const cache = new StatCache(file);
    let text = '';
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch {
      // Missing or unreadable: start empty; it is only a cache.
    }
    for (const line of text.split('\n')) {
      const tab = line.indexOf('\0');
      if (tab > 0) cache.rows.set(line.slice(0, tab), line.slice(tab + 1));
    }
    return cache;
  }

  /** The remembered hash if the file's stat is unchanged (synchronous: the common case). */
  cached(rel: string, st: FileInfo): string | undefined {
    const stat = `${st.ino} ${st.size} ${st.mtime} ${st.ctime}`;
    const row = this.rows.get(rel);
    if (row !== undefined && row.length === stat.length + 65 && row.startsWith(stat) && row[stat.length] === '\0') return row.slice(stat.length + 1);
    return undefined;
  }

  /** sha256 of the file's content, from the cache when its stat is unchanged. */
  async hash(rel: string, abs: string, st: FileInfo): Promise<string> {
    const known = this.cached(rel, st);
    if (known !== undefined) return known;
    const stat = `${st.ino} ${st.size} ${st.mtime} ${st.ctime}`;
    const hash = await hashFile(abs, st.size);
    this.rows.set(rel, `${stat}\0${hash}`);
    this.dirty = true;
    return hash;
  }

  /**
   * Hashes every file the cache does not know, many at a time: a few hundred are done here,
   * more go to sha256sum in two child processes (C is several times faster per small file
   * than a read and a hash in JS, and the second process uses the other core).
   */
  async hashAll(files: { rel: string; abs: string; info: FileInfo }[]): Promise<void> {
    const missing = files.filter((f) => f.info.type === 'file' && this.cached(f.rel, f.info) === undefined);
    if (missing.length < 256) {
      for (const f of missing) await this.hash(f.rel, f.abs, f.info);
      return;
    }
    const half = Math.ceil(missing.length / 2);
    const results = await Promise.all([sha256sum(missing.slice(0, half).map((f) => f.abs)), sha256sum(missing.slice(half).map((f) => f.abs))]).catch(() => undefined);
    if (!results) {
      for (const f of missing) await this.hash(f.rel, f.abs, f.info);
      return;
    }
    const sums = [...results[0], ...results[1]];
    missing.forEach((f, i) => {
      this.rows.set(f.rel, `${f.info.ino} ${f.info.size} ${f.info.mtime} ${f.info.ctime}\0${sums[i]}`);
    });
    this.dirty = true;
  }

  async save(): Promise<void> {
    if (!this.file || !this.dirty) return;
    // Rows not seen in this build stay: another COPY may read them next time.
    const tmp = `${this.file}.${process.pid}.tmp`;
    await fsp.mkdir(join(this.file, '..'), { recursive: true });
    let text = '';
    for (const [rel, row] of this.rows) if (!rel.includes('\n')) text += `${rel}\0${row}\n`;
    await fsp.writeFile(tmp, text);
    await fsp.rename(tmp, this.file);
    this.dirty = false;
  }
}

/** Small files are read whole and synchronously: a stream per file costs more than the file. */
export function hashFile(path: string, size = Infinity): Promise<string> {
  if (size <= 1 << 20) {
    try {
      return Promise.resolve(createHash('sha256').update(readFileSync(path)).digest('hex'));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** sha256 of each path, in order, by `xargs -0 sha256sum -z` (NUL-separated, any file name). */
function sha256sum(paths: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('xargs', ['-0', 'sha256sum', '-z', '--'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', () => {});
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`sha256sum exited ${code}`));
      const records = Buffer.concat(out).toString('utf8').split('\0').filter(Boolean);
      if (records.length !== paths.length) return reject(new Error('sha256sum output does not match its input'));
      const sums = records.map((r) => r.slice(0, 64));
      if (sums.some((h) => !/^[0-9a-f]{64}$/.test(h))) return reject(new Error('unexpected sha256sum output'));
      resolve(sums);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(paths.map((p) => `${p}\0`).join(''));
  });
}
