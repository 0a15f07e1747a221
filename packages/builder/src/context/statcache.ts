// What the last builds learned about a context's files, so that an unchanged file is never read
// again and an unchanged directory is not even looked into. One row per directory:
//   - the content hash of each file in it, remembered by (inode, size, mtime, ctime);
//   - the stat signature of the whole subtree (native/walk.c) and, for each set of exclusion
//     rules it was copied with, the content digest of the subtree (tree.ts). While the
//     signature is unchanged the digest stands, and a cached rebuild does no per-file work.
// One binary file per context directory in the store, written to a temp file and renamed,
// checksummed (a torn file reads as empty: it is only a cache), and only when something changed.
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Listing } from './listing.js';

const Magic = 'TSBSC4\0\0';
/** Exclusion rule sets remembered per directory (COPY --exclude variants of one tree). */
const MemosPerDir = 4;

export interface Memo {
  /** Digest of the rules the content digest was computed under (tree.ts ruleDigest). */
  rules: Buffer;
  digest: Buffer;
}

export class DirRow {
  private index: Map<string, number> | undefined;

  constructor(
    /** Signature of the subtree when the memos were made; all zero when none may be kept. */
    readonly sig: Buffer,
    readonly memos: Memo[],
    /** Records `u8 name length, name, 40 stat bytes, 32 hash bytes`. */
    readonly files: Buffer,
  ) {}

  /** The remembered content hash of a file, if its 40 stat bytes are still those. */
  hash(nameKey: string, stat: Buffer, statAt: number): Buffer | undefined {
    const at = this.offsets().get(nameKey);
    if (at === undefined) return undefined;
    const s = at + 1 + this.files[at]!;
    return stat.compare(this.files, s, s + 40, statAt, statAt + 40) === 0 ? this.files.subarray(s + 40, s + 72) : undefined;
  }

  memo(sig: Buffer, rules: Buffer): Buffer | undefined {
    if (!sig.equals(this.sig)) return undefined;
    return this.memos.find((m) => m.rules.equals(rules))?.digest;
  }

  /** Every file record, as [name key, record offset]. */
  offsets(): Map<string, number> {
    if (this.index) return this.index;
    const m = new Map<string, number>();
    for (let at = 0; at < this.files.length; at += 1 + this.files[at]! + 72) m.set(this.files.toString('latin1', at + 1, at + 1 + this.files[at]!), at);
    return (this.index = m);
  }
}

/** Builds a row's file records. */
export class FileRecords {
  private parts: Buffer[] = [];
  add(name: Buffer, stat: Buffer, statAt: number, hash: Buffer): void {
    if (name.length > 255) return;
    const r = Buffer.allocUnsafe(1 + name.length + 72);
    r[0] = name.length;
    name.copy(r, 1);
    stat.copy(r, 1 + name.length, statAt, statAt + 40);
    hash.copy(r, 1 + name.length + 40);
    this.parts.push(r);
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export class StatCache {
  /** Rows by directory path (latin1 of its bytes, '' for the context), raw until first read. */
  private raw = new Map<string, Buffer>();
  private rows = new Map<string, DirRow>();
  private dirty = false;

  private constructor(private readonly file: string | undefined) {}

  static async load(dir: string | undefined, contextDir: string): Promise<StatCache> {
    if (!dir) return new StatCache(undefined);
    const file = join(dir, createHash('sha256').update(contextDir).digest('hex').slice(0, 32) + '.v4');
    const cache = new StatCache(file);
    let buf: Buffer;
    try {
      buf = await fsp.readFile(file);
    } catch {
      return cache; // missing or unreadable: start empty
    }
    if (buf.length < 8 + 32 || buf.toString('latin1', 0, 8) !== Magic) return cache;
    const body = buf.subarray(0, buf.length - 32);
    if (!createHash('sha256').update(body).digest().equals(buf.subarray(buf.length - 32))) return cache;
    try {
      for (let at = 8; at < body.length; ) {
        const len = body.readUInt32LE(at);
        if (at + 4 + len > body.length) throw new RangeError('row past the end');
        const row = body.subarray(at + 4, at + 4 + len);
        const relLen = row.readUInt32LE(0);
        cache.raw.set(row.toString('latin1', 4, 4 + relLen), row);
        at += 4 + len;
      }
    } catch {
      cache.raw.clear(); // written by something else: start empty
    }
    return cache;
  }

  row(dirKey: string): DirRow | undefined {
    let r = this.rows.get(dirKey);
    if (r) return r;
    const raw = this.raw.get(dirKey);
    if (!raw) return undefined;
    let at = 4 + raw.readUInt32LE(0);
    const sig = raw.subarray(at, at + 32);
    at += 32;
    const memos: Memo[] = [];
    for (let n = raw[at++]!; n > 0; n--, at += 64) memos.push({ rules: raw.subarray(at, at + 32), digest: raw.subarray(at + 32, at + 64) });
    r = new DirRow(sig, memos, raw.subarray(at));
    this.rows.set(dirKey, r);
    return r;
  }

  /** Replaces a directory's row; `memo` joins (or refreshes) the memos kept for the same signature. */
  put(dirKey: string, sig: Buffer | undefined, memo: Memo | undefined, files: Buffer): void {
    const old = this.row(dirKey);
    const zero = Buffer.alloc(32);
    const s = sig ?? zero;
    let memos: Memo[] = [];
    if (sig && memo) {
      memos = [memo, ...(old && old.sig.equals(sig) ? old.memos.filter((m) => !m.rules.equals(memo.rules)) : [])].slice(0, MemosPerDir);
    }
    if (old && old.sig.equals(s) && sameMemos(old.memos, memos) && old.files.equals(files)) return;
    this.rows.set(dirKey, new DirRow(s, memos, files));
    this.raw.delete(dirKey);
    this.dirty = true;
  }

  /** Adds (or replaces) one file's hash in a directory's row, keeping its subtree memos. */
  addFile(dirKey: string, name: Buffer, stat: Buffer, statAt: number, hash: Buffer): void {
    const old = this.row(dirKey);
    const records = new FileRecords();
    if (old) {
      const skip = old.offsets().get(name.toString('latin1'));
      for (let at = 0; at < old.files.length; at += 1 + old.files[at]! + 72) {
        if (at === skip) continue;
        const n = 1 + old.files[at]!;
        records.add(old.files.subarray(at + 1, at + n), old.files, at + n, old.files.subarray(at + n + 40, at + n + 72));
      }
    }
    records.add(name, stat, statAt, hash);
    this.rows.set(dirKey, new DirRow(old?.sig ?? Buffer.alloc(32), old?.memos ?? [], records.done()));
    this.raw.delete(dirKey);
    this.dirty = true;
  }

  /**
   * Writes the rows back if anything changed. Rows of directories the listing no longer has
   * are dropped; rows of directories no COPY read this time stay (another may read them).
   */
  async save(listing?: Listing): Promise<void> {
    if (!this.file || !this.dirty) return;
    const present = listing ? directoryKeys(listing) : undefined;
    const parts: Buffer[] = [Buffer.from(Magic, 'latin1')];
    const keys = new Set([...this.raw.keys(), ...this.rows.keys()]);
    for (const key of keys) {
      if (present && !present.has(key)) continue;
      const parsed = this.rows.get(key);
      if (!parsed) {
        const raw = this.raw.get(key)!;
        const len = Buffer.allocUnsafe(4);
        len.writeUInt32LE(raw.length);
        parts.push(len, raw);
        continue;
      }
      const rel = Buffer.from(key, 'latin1');
      const head = Buffer.allocUnsafe(4 + 4 + rel.length + 32 + 1);
      head.writeUInt32LE(4 + rel.length + 32 + 1 + parsed.memos.length * 64 + parsed.files.length, 0);
      head.writeUInt32LE(rel.length, 4);
      rel.copy(head, 8);
      parsed.sig.copy(head, 8 + rel.length);
      head[8 + rel.length + 32] = parsed.memos.length;
      parts.push(head);
      for (const m of parsed.memos) parts.push(m.rules, m.digest);
      parts.push(parsed.files);
    }
    const body = Buffer.concat(parts);
    const tmp = `${this.file}.${process.pid}.tmp`;
    await fsp.mkdir(join(this.file, '..'), { recursive: true });
    await fsp.writeFile(tmp, Buffer.concat([body, createHash('sha256').update(body).digest()]));
    await fsp.rename(tmp, this.file);
    // The text cache of earlier versions is dead weight once this one exists.
    await fsp.rm(this.file.replace(/\.v4$/, '.v3'), { force: true }).catch(() => {});
    this.dirty = false;
  }
}

function sameMemos(a: Memo[], b: Memo[]): boolean {
  return a.length === b.length && a.every((m, i) => m.rules.equals(b[i]!.rules) && m.digest.equals(b[i]!.digest));
}

/** The path keys of every directory in a listing. */
function directoryKeys(listing: Listing): Set<string> {
  const keys = new Set<string>(['']);
  const walk = (dir: number, key: string) => {
    for (const off of listing.entries(dir)) {
      const child = listing.child(off);
      if (child === 0xffffffff) continue;
      const k = key === '' ? listing.nameKey(off) : `${key}/${listing.nameKey(off)}`;
      keys.add(k);
      walk(child, k);
    }
  };
  walk(0, '');
  return keys;
}
