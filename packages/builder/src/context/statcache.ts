// What the last builds learned about a context's files, so that an unchanged file is never read
// again and an unchanged directory is not even looked into. One row per directory:
//   - the content hash of each file in it, remembered by (inode, size, mtime, ctime);
//   - the stat signature of the whole subtree (native/walk.c) and, for each set of exclusion
//     rules it was copied with, the content digest of the subtree (tree.ts). While the
//     signature is unchanged the digest stands, and a cached rebuild does no per-file work.
//
// One binary file per context directory in the store, written to a temp file and renamed, and
// only when something changed. A cached rebuild reads a handful of rows, so nothing is parsed
// at load: rows are sorted by path and found by binary search through an offset table, and each
// is checked against its own digest when first read (a torn or foreign file reads as missing
// rows: it is only a cache).
//
//   "TSBSC5\0\0"  u32 listing entries (a size hint for walk.ts)  u32 rows
//   rows:  sha256(body)  u32 body length  body = u32 path length, path, sig[32], u8 memos,
//          memos × (rules[32], digest[32]), file records (u8 name length, name, stat[40], hash[32])...
//   index: rows × u32 row offset, in path-byte order
import { createHash } from 'node:crypto';
import { closeSync, openSync, promises as fsp, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '@tsbuild/sys';
import type { Listing } from './listing.js';

const Magic = 'TSBSC5\0\0';
const Head = 16;
/** Exclusion rule sets remembered per directory (COPY --exclude variants of one tree). */
const MemosPerDir = 4;

export interface Memo {
  /** Digest of the rules the content digest was computed under (tree.ts rulesDigest). */
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
    const s = at + 1 + this.files[at];
    return stat.compare(this.files, s, s + 40, statAt, statAt + 40) === 0
      ? this.files.subarray(s + 40, s + 72)
      : undefined;
  }

  memo(sig: Buffer, rules: Buffer): Buffer | undefined {
    if (!sig.equals(this.sig)) return undefined;
    return this.memos.find((m) => m.rules.equals(rules))?.digest;
  }

  /** Every file record, as name key → record offset. */
  offsets(): Map<string, number> {
    if (this.index) return this.index;
    const m = new Map<string, number>();
    for (let at = 0; at < this.files.length; at += 1 + this.files[at] + 72)
      m.set(this.files.toString('latin1', at + 1, at + 1 + this.files[at]), at);
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
  /** The file as loaded (empty when there was none). */
  private loaded: Buffer = Buffer.alloc(0);
  private rowCount = 0;
  /** Rows read or replaced in this build, by directory path (latin1 of its bytes, '' for the context). */
  private rows = new Map<string, DirRow | null>();
  private changed = new Set<string>();

  private constructor(private readonly file: string | undefined) {}

  static fileFor(dir: string, contextDir: string): string {
    return join(dir, createHash('sha256').update(contextDir).digest('hex').slice(0, 32) + '.v5');
  }

  /** The entry count of the last listing saved for this context, without loading the cache. */
  static sizeHint(dir: string | undefined, contextDir: string): number {
    if (!dir) return 0;
    try {
      const fd = openSync(StatCache.fileFor(dir, contextDir), 'r');
      try {
        const b = Buffer.alloc(Head);
        return readSync(fd, b, 0, Head, 0) === Head && b.toString('latin1', 0, 8) === Magic ? b.readUInt32LE(8) : 0;
      } finally {
        closeSync(fd);
      }
    } catch {
      return 0;
    }
  }

  static load(dir: string | undefined, contextDir: string): StatCache {
    if (!dir) return new StatCache(undefined);
    const cache = new StatCache(StatCache.fileFor(dir, contextDir));
    let buf: Buffer;
    try {
      buf = readFileSync(cache.file!);
    } catch {
      return cache; // missing or unreadable: start empty
    }
    if (buf.length < Head || buf.toString('latin1', 0, 8) !== Magic) return cache;
    const rows = buf.readUInt32LE(12);
    if (Head + rows * 4 > buf.length) return cache;
    cache.loaded = buf;
    cache.rowCount = rows;
    return cache;
  }

  row(dirKey: string): DirRow | undefined {
    let r = this.rows.get(dirKey);
    if (r === undefined) {
      const body = this.find(dirKey);
      r = body ? parseRow(body) : null;
      this.rows.set(dirKey, r);
    }
    return r ?? undefined;
  }

  /** Replaces a directory's row; `memo` joins (or refreshes) the memos kept for the same signature. */
  put(dirKey: string, sig: Buffer | undefined, memo: Memo | undefined, files: Buffer): void {
    const old = this.row(dirKey);
    const s = sig ?? Buffer.alloc(32);
    let memos: Memo[] = [];
    if (sig && memo)
      memos = [memo, ...(old && old.sig.equals(sig) ? old.memos.filter((m) => !m.rules.equals(memo.rules)) : [])].slice(
        0,
        MemosPerDir,
      );
    if (old && old.sig.equals(s) && sameMemos(old.memos, memos) && old.files.equals(files)) return;
    this.set(dirKey, new DirRow(s, memos, files));
  }

  /** Adds (or replaces) one file's hash in a directory's row, keeping its subtree memos. */
  addFile(dirKey: string, name: Buffer, stat: Buffer, statAt: number, hash: Buffer): void {
    const old = this.row(dirKey);
    const records = new FileRecords();
    if (old) {
      const skip = old.offsets().get(name.toString('latin1'));
      for (let at = 0; at < old.files.length; at += 1 + old.files[at] + 72) {
        if (at === skip) continue;
        const n = 1 + old.files[at];
        records.add(
          old.files.subarray(at + 1, at + n),
          old.files,
          at + n,
          old.files.subarray(at + n + 40, at + n + 72),
        );
      }
    }
    records.add(name, stat, statAt, hash);
    this.set(dirKey, new DirRow(old?.sig ?? Buffer.alloc(32), old?.memos ?? [], records.done()));
  }

  private set(dirKey: string, row: DirRow): void {
    this.rows.set(dirKey, row);
    this.changed.add(dirKey);
  }

  /**
   * Writes the rows back if anything changed. Rows of directories the listing no longer has
   * are dropped; rows of directories no COPY read this time stay (another may read them).
   */
  async save(listing?: Listing): Promise<void> {
    if (!this.file || this.changed.size === 0) return;
    const present = listing ? directoryKeys(listing) : undefined;
    // A row is its parts (views of the loaded file, or of what serialize made), copied once: into the file.
    const bodies = new Map<string, Buffer[]>();
    for (let i = 0; i < this.rowCount; i++) {
      const at = this.rowAt(i);
      if (at === undefined) continue;
      const key = this.keyAt(at);
      if (!this.changed.has(key))
        bodies.set(key, [this.loaded.subarray(at, at + 36 + this.loaded.readUInt32LE(at + 32))]);
    }
    for (const key of this.changed) {
      const row = this.rows.get(key);
      if (row) bodies.set(key, withDigest(serialize(key, row)));
    }
    const keys = [...bodies.keys()].filter((k) => !present || present.has(k));
    keys.sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
    const head = Buffer.alloc(Head);
    head.write(Magic, 0, 'latin1');
    head.writeUInt32LE(listing ? Math.min(listing.entryCount(), 0xffffffff) : 0, 8);
    head.writeUInt32LE(keys.length, 12);
    const index = Buffer.alloc(keys.length * 4);
    const parts: Buffer[] = [head, index];
    let at = Head + index.length;
    keys.forEach((k, i) => {
      index.writeUInt32LE(at, i * 4);
      for (const b of bodies.get(k)!) {
        parts.push(b);
        at += b.length;
      }
    });
    await fsp.mkdir(join(this.file, '..'), { recursive: true });
    // A cache: not durable (a crash may lose this save, never tear the file).
    await writeFileAtomic(this.file, Buffer.concat(parts));
    // The caches of earlier versions are dead weight once this one exists.
    for (const old of ['.v3', '.v4']) await fsp.rm(this.file.replace(/\.v5$/, old), { force: true }).catch(() => {});
    this.changed.clear();
  }

  // ---- the loaded file
  private rowAt(i: number): number | undefined {
    const at = this.loaded.readUInt32LE(Head + i * 4);
    if (at + 40 > this.loaded.length) return undefined;
    const len = this.loaded.readUInt32LE(at + 32);
    if (len < 4 || at + 36 + len > this.loaded.length) return undefined;
    const relLen = this.loaded.readUInt32LE(at + 36);
    return 4 + relLen <= len ? at : undefined;
  }
  private keyAt(at: number): string {
    return this.loaded.toString('latin1', at + 40, at + 40 + this.loaded.readUInt32LE(at + 36));
  }

  /** The body of a directory's row, checked against its digest. */
  private find(dirKey: string): Buffer | undefined {
    const want = Buffer.from(dirKey, 'latin1');
    let lo = 0;
    let hi = this.rowCount;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const at = this.rowAt(mid);
      if (at === undefined) return undefined;
      const relLen = this.loaded.readUInt32LE(at + 36);
      const c = this.loaded.compare(want, 0, want.length, at + 40, at + 40 + relLen);
      if (c === 0) {
        const body = this.loaded.subarray(at + 36, at + 36 + this.loaded.readUInt32LE(at + 32));
        return createHash('sha256')
          .update(body)
          .digest()
          .equals(this.loaded.subarray(at, at + 32))
          ? body
          : undefined;
      }
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return undefined;
  }
}

function parseRow(body: Buffer): DirRow | null {
  let at = 4 + body.readUInt32LE(0);
  if (at + 33 > body.length) return null;
  const sig = body.subarray(at, at + 32);
  at += 32;
  const memos: Memo[] = [];
  for (let n = body[at++]; n > 0; n--, at += 64)
    memos.push({ rules: body.subarray(at, at + 32), digest: body.subarray(at + 32, at + 64) });
  return at <= body.length ? new DirRow(sig, memos, body.subarray(at)) : null;
}

/** A row's body, in parts (the row's own buffers, not copied). */
function serialize(key: string, row: DirRow): Buffer[] {
  const rel = Buffer.from(key, 'latin1');
  const head = Buffer.alloc(4 + rel.length + 32 + 1);
  head.writeUInt32LE(rel.length, 0);
  rel.copy(head, 4);
  row.sig.copy(head, 4 + rel.length);
  head[4 + rel.length + 32] = row.memos.length;
  return [head, ...row.memos.flatMap((m) => [m.rules, m.digest]), row.files];
}

/** digest, u32 length, body: the form rows take in the file (in parts). */
function withDigest(body: Buffer[]): Buffer[] {
  const hash = createHash('sha256');
  let length = 0;
  for (const b of body) {
    hash.update(b);
    length += b.length;
  }
  const len = Buffer.alloc(4);
  len.writeUInt32LE(length);
  return [hash.digest(), len, ...body];
}

function sameMemos(a: Memo[], b: Memo[]): boolean {
  return a.length === b.length && a.every((m, i) => m.rules.equals(b[i].rules) && m.digest.equals(b[i].digest));
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
