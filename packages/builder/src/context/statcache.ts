// What the last builds learned about a context's files, so that an unchanged file is never read
// again and an unchanged directory is not even looked into. One row per directory:
//   - the content hash of each file in it, remembered by (inode, size, mtime, ctime);
//   - the stat signature of the whole subtree (native/walk.c) and, for each set of exclusion
//     rules it was copied with, the content digest of the subtree (tree.ts). While the
//     signature is unchanged the digest stands, and a cached rebuild does no per-file work.
//
// One binary file per context directory in the store, written to a temp file and renamed, and
// only when something changed. A cached rebuild reads a handful of rows, so nothing is read at
// load but the offset table: rows are sorted by path and found by binary search through it, read
// from the file as they are probed, and each is checked against its own digest when first read (a
// torn or foreign file reads as missing rows: it is only a cache). A save streams: unchanged rows
// are copied from the file as it was loaded, so neither needs the whole file in memory.
//
//   "TSBSC5\0\0"  u32 listing entries (a size hint for walk.ts)  u32 rows
//   rows:  sha256(body)  u32 body length  body = u32 path length, path, sig[32], u8 memos,
//          memos × (rules[32], digest[32]), file records (u8 name length, name, stat[40], hash[32])...
//   index: rows × u32 row offset, in path-byte order
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, promises as fsp, readSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseOwner, pidAlive, writeFileAtomic } from '@tsbuild/sys';
import { None, type Listing } from './listing.js';
import { unnamedFile } from './walk.js';

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
  /** The file as loaded, open (the rows are read from it as they are looked up), or undefined: none. */
  private fd: number | undefined;
  private rowCount = 0;
  /** The file's offset table (row offsets in path order). */
  private index: Buffer = Buffer.alloc(0);
  private fileSize = 0;
  /** The whole file, read once lookups are many: a row probed by pread costs a syscall per step. */
  private whole: Buffer | undefined;
  private lookups = 0;
  /** Rows read from the file in this build, by directory path (latin1 of its bytes, '' for the context). */
  private rows = new Map<string, DirRow | null>();
  /**
   * Rows replaced in this build, as their bodies (the file's form) in one arena: not a DirRow, its buffers and
   * memo objects each (~600 bytes of heap a directory, 23 MB in a cold 200,000-file context).
   */
  private changed = new Bodies();
  /** Bumped by every row replaced; the file holds every row replaced up to `written`. */
  private version = 0;
  private written = 0;
  /** A write of the file under way (flush or save): one at a time. */
  private writing: Promise<void> | undefined;

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
    let fd: number;
    try {
      fd = openSync(cache.file!, 'r');
    } catch {
      return cache; // missing or unreadable: start empty
    }
    try {
      const size = fstatSync(fd).size;
      const head = readAt(fd, 0, Head, size);
      if (!head || head.toString('latin1', 0, 8) !== Magic) throw new Error('not a stat cache');
      const rows = head.readUInt32LE(12);
      const index = readAt(fd, Head, rows * 4, size);
      if (!index) throw new Error('torn');
      cache.fd = fd;
      cache.rowCount = rows;
      cache.index = index;
      cache.fileSize = size;
    } catch {
      closeSync(fd);
    }
    return cache;
  }

  row(dirKey: string): DirRow | undefined {
    const body = this.changed.get(dirKey);
    if (body) return parseRow(body) ?? undefined; // a view, made anew: not kept
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
    this.rows.delete(dirKey);
    this.changed.set(dirKey, serialize(dirKey, row));
    this.version++;
  }

  /**
   * Writes the rows back now if anything changed since the last write, keeping them all readable: a build
   * flushes while a RUN's command runs and its own thread would only wait, so that save() at the end has
   * nothing left to write. The loaded file stays open (its fd reads the rows as they were loaded, whatever
   * replaced the file since) and the replaced rows stay in memory, as before a save. A row replaced while
   * the file is being written is written again by the next write.
   */
  async flush(listing?: Listing): Promise<void> {
    for (let w = this.writing; w; w = this.writing) {
      await w.catch(() => {});
      // write() clears it when it ends, unless it failed before its first await (then it was set after).
      if (this.writing === w) this.writing = undefined;
    }
    if (!this.file || this.version === this.written) return;
    await (this.writing = this.write(listing));
  }

  /** Writes the rows back if anything changed since the last write (flush), then lets go of the loaded file. */
  async save(listing?: Listing): Promise<void> {
    try {
      await this.flush(listing);
      this.changed.clear();
    } finally {
      this.close();
    }
  }

  /**
   * Writes every row to a new file. Rows of directories the listing no longer has
   * are dropped; rows of directories no COPY read this time stay (another may read them).
   * Streamed: the rows kept are chosen first (a merge of the file's rows, the changed ones and
   * the listing's directories, all in path order), then copied into the new file in 1 MiB pieces.
   */
  private async write(listing: Listing | undefined): Promise<void> {
    if (!this.file) return;
    const version = this.version;
    try {
      // latin1 keys: code-unit order is the order of their bytes.
      const changed = [...this.changed.keys()].sort(byCodeUnit);
      const present = listing ? directoryKeys(listing)[Symbol.iterator]() : undefined;
      let next = present?.next();
      const isPresent = (key: string): boolean => {
        if (!present) return true;
        while (!next!.done && next!.value < key) next = present.next();
        return !next!.done && next!.value === key;
      };
      // The rows kept, in order: a row of the file (its offset, length) or a changed row (~its index in `changed`).
      const from: number[] = [];
      const size: number[] = [];
      const reader = this.reader();
      let c = 0;
      let last: string | undefined;
      const takeChanged = (until: string | undefined) => {
        for (; c < changed.length && (until === undefined || changed[c] <= until); c++) {
          if (!isPresent(changed[c])) continue;
          from.push(~c);
          size.push(-1);
        }
      };
      for (let i = 0; i < this.rowCount; i++) {
        // Read in place: a Buffer object per row read would be ~80,000 short-lived objects in a 200,000-file context.
        const at = this.index.readUInt32LE(i * 4);
        let o = reader.find(at, 40);
        if (o < 0) continue;
        const len = reader.buf.readUInt32LE(o + 32);
        const relLen = reader.buf.readUInt32LE(o + 36);
        if (len < 4 || 4 + relLen > len || at + 36 + len > this.fileSize) continue;
        o = reader.find(at + 40, relLen);
        const key = o < 0 ? undefined : reader.buf.toString('latin1', o, o + relLen);
        // A file out of order (foreign, damaged) loses the rows that break the order: it is only a cache.
        if (key === undefined || (last !== undefined && key <= last)) continue;
        last = key;
        takeChanged(key);
        if (this.changed.has(key) || !isPresent(key)) continue;
        from.push(at);
        size.push(36 + len);
      }
      takeChanged(undefined);
      // A changed row's digest is made as it is written: made here, its parts (three Buffers, the digest with a
      // memory block of its own) for every row of a cold 200,000-file context were ~30 MB held through the write.
      const body = (f: number): Buffer => this.changed.get(changed[~f])!;
      from.forEach((f, i) => {
        if (f < 0) size[i] = 32 + 4 + this.changed.length(changed[~f])!;
      });
      const head = Buffer.alloc(Head + from.length * 4);
      head.write(Magic, 0, 'latin1');
      head.writeUInt32LE(listing ? Math.min(listing.entryCount(), 0xffffffff) : 0, 8);
      head.writeUInt32LE(from.length, 12);
      let at = head.length;
      size.forEach((n, i) => {
        head.writeUInt32LE(at, Head + i * 4);
        at += n;
      });
      async function* content(): AsyncGenerator<Buffer> {
        const out = new Pieces();
        yield* out.add(head);
        for (let i = 0; i < from.length; i++) {
          if (from[i] < 0) for (const b of withDigest([body(from[i])])) yield* out.add(b);
          else {
            // A row of the old file, read in order (the reader reads ahead) or alone when it is big.
            const row = reader.get(from[i], size[i]);
            if (!row) throw new Error('stat cache: the loaded file changed under this process');
            yield* out.add(row);
          }
        }
        yield* out.end();
      }
      await fsp.mkdir(join(this.file, '..'), { recursive: true });
      // A cache: not durable (a crash may lose this save, never tear the file).
      await writeFileAtomic(this.file, this.whileUnchanged(content(), version));
      // The caches of earlier versions are dead weight once this one exists.
      for (const old of ['.v3', '.v4']) await fsp.rm(this.file.replace(/\.v5$/, old), { force: true }).catch(() => {});
      await sweepTemps(this.file);
      this.written = version;
    } finally {
      this.writing = undefined;
    }
  }

  /**
   * The parts of a write while no row is replaced: a row replaced meanwhile (a flush beside a step that still
   * hashes) ends the write, whose sizes and offsets were reckoned before, and the next write has it.
   */
  private async *whileUnchanged(parts: AsyncIterable<Buffer>, version: number): AsyncGenerator<Buffer> {
    for await (const part of parts) {
      if (this.version !== version) throw new Error('stat cache: a row was replaced while the file was written');
      yield part;
    }
  }

  /**
   * Lets go of the loaded file (rows not read by now read as missing) and of the rows replaced in this build,
   * which nothing writes after this. save() does it too.
   */
  close(): void {
    this.changed.clear();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.rowCount = 0;
    this.whole = undefined;
  }

  // ---- the loaded file
  private reader(): Reader {
    return new Reader(this.fd, this.fileSize, this.whole);
  }

  /** `len` bytes at `at` of the loaded file (undefined past its end or when it cannot be read). */
  private read(at: number, len: number): Buffer | undefined {
    if (this.whole) return at + len <= this.whole.length ? this.whole.subarray(at, at + len) : undefined;
    if (this.fd === undefined) return undefined;
    try {
      return readAt(this.fd, at, len, this.fileSize);
    } catch {
      return undefined;
    }
  }

  /** The body of a directory's row, checked against its digest. */
  private find(dirKey: string): Buffer | undefined {
    if (this.rowCount === 0) return undefined;
    if (++this.lookups === WholeAfter && this.fd !== undefined) {
      try {
        this.whole = readAt(this.fd, 0, this.fileSize, this.fileSize);
      } catch {
        // rows stay read one at a time
      }
    }
    const want = Buffer.from(dirKey, 'latin1');
    let lo = 0;
    let hi = this.rowCount;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const at = this.index.readUInt32LE(mid * 4);
      // The row's digest, length, key length and (most often all of) its key, in one read.
      const head = this.read(at, Math.min(40 + want.length + 1, this.fileSize - at));
      if (!head || head.length < 40) return undefined;
      const len = head.readUInt32LE(32);
      const relLen = head.readUInt32LE(36);
      if (len < 4 || 4 + relLen > len || at + 36 + len > this.fileSize) return undefined;
      const key = 40 + relLen <= head.length ? head.subarray(40, 40 + relLen) : this.read(at + 40, relLen);
      if (!key) return undefined;
      const c = key.compare(want);
      if (c === 0) {
        const row = this.read(at, 36 + len);
        if (!row) return undefined;
        const body = row.subarray(36);
        return createHash('sha256').update(body).digest().equals(row.subarray(0, 32)) ? body : undefined;
      }
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return undefined;
  }
}

/**
 * Buffers by key, laid out in 1 MiB chunks: a Buffer object per row (and an 8 KiB pool slab kept alive by any
 * slice of it) held twice the rows' bytes. A replaced buffer's bytes are left where they are until they are
 * as many as the live ones; then the live ones are copied into new chunks.
 *
 * Only the chunk being filled stays in memory: a full one is written to an unnamed temp file and read back
 * through a few 64 KiB blocks as rows are looked up. The rows of a cold 200,000-file context (22 MB, every
 * directory's) were held from its content digest to the end of the build, at its peak resident set (bench/
 * RESULTS.md, "Memory at 200,000 files, continued"). Where no such file can be made, chunks stay in memory.
 */
export class Bodies {
  private arena: Arena;

  /** @param spillFile makes the spill file (undefined: none can be made, chunks stay in memory) */
  constructor(private readonly spillFile: () => number | undefined = unnamedFile) {
    this.arena = new Arena(spillFile);
  }

  get size(): number {
    return this.arena.where.size;
  }
  keys(): IterableIterator<string> {
    return this.arena.where.keys();
  }
  has(key: string): boolean {
    return this.arena.where.has(key);
  }
  /** A body's length, without reading it. */
  length(key: string): number | undefined {
    return this.arena.length(key);
  }
  /** The body: a view, which stays as it is (replacing the key or compacting writes elsewhere). */
  get(key: string): Buffer | undefined {
    return this.arena.get(key);
  }

  set(key: string, parts: Buffer[]): void {
    const a = this.arena;
    a.set(key, parts);
    if (a.waste > Math.max(a.live, Window)) {
      // The live bodies copied into a new arena (and spill file), one at a time.
      const next = new Arena(this.spillFile);
      for (const k of a.where.keys()) next.set(k, [a.get(k)!]);
      a.clear();
      this.arena = next;
    }
  }

  /** Forgets every body and lets go of the spill file. */
  clear(): void {
    this.arena.clear();
  }
}

class Arena {
  readonly where = new Map<string, number>();
  /** Chunks by index: in memory while being filled (or when they could not be written out), else undefined. */
  private chunks: (Buffer | undefined)[] = [];
  /** Where each chunk starts in the spill file. */
  private chunkAt: number[] = [];
  private spill: Spill | undefined;
  private spilled = 0;
  /** Per id: chunk, offset, length. */
  private loc = new Uint32Array(3 * 1024);
  private ids = 0;
  private used = 0;
  live = 0;
  waste = 0;

  constructor(private readonly spillFile: () => number | undefined) {}

  length(key: string): number | undefined {
    const id = this.where.get(key);
    return id === undefined ? undefined : this.loc[id * 3 + 2];
  }

  get(key: string): Buffer | undefined {
    const id = this.where.get(key);
    if (id === undefined) return undefined;
    const [c, at, len] = this.loc.subarray(id * 3, id * 3 + 3);
    const chunk = this.chunks[c];
    return chunk ? chunk.subarray(at, at + len) : this.spill!.read(this.chunkAt[c] + at, len);
  }

  set(key: string, parts: Buffer[]): void {
    const was = this.length(key);
    if (was !== undefined) {
      this.waste += was;
      this.live -= was;
    }
    const len = parts.reduce((n, b) => n + b.length, 0);
    let chunk = this.chunks[this.chunks.length - 1];
    if (!chunk || this.used + len > chunk.length) {
      if (chunk) this.putAway(this.chunks.length - 1);
      this.chunks.push((chunk = Buffer.allocUnsafe(Math.max(Window, len))));
      this.chunkAt.push(this.spilled);
      this.used = 0;
    }
    const at = this.used;
    for (const b of parts) this.used += b.copy(chunk, this.used);
    if ((this.ids + 1) * 3 > this.loc.length) {
      const grown = new Uint32Array(this.loc.length * 2);
      grown.set(this.loc);
      this.loc = grown;
    }
    this.loc.set([this.chunks.length - 1, at, len], this.ids * 3);
    this.where.set(key, this.ids++);
    this.live += len;
  }

  clear(): void {
    this.where.clear();
    this.chunks = [];
    this.chunkAt = [];
    this.spill?.close();
    this.spill = undefined;
    this.ids = this.used = this.live = this.waste = this.spilled = 0;
  }

  /** Writes a full chunk to the spill file and lets go of it (kept in memory when it cannot be written). */
  private putAway(c: number): void {
    if (this.spill === undefined) {
      const fd = this.spillFile();
      if (fd === undefined) return;
      this.spill = new Spill(fd);
    }
    const chunk = this.chunks[c]!;
    // Chunks go to the file in order, each where the last one written ended: one that could not be written stays
    // in memory, and the next one made takes the file offset it would have had.
    if (this.chunkAt[c] !== this.spilled || !this.spill.write(chunk.subarray(0, this.used), this.spilled)) return;
    this.spilled += this.used;
    this.chunks[c] = undefined;
  }
}

/**
 * The spill file of Bodies: written at increasing offsets, read back through a few 64 KiB blocks kept by last use
 * (a save reads the rows in path order, a tree's directories were put children first: the blocks of the
 * directories above the one read are the ones read next).
 */
class Spill {
  private readonly blocks = new Map<number, Buffer>();

  constructor(private readonly fd: number) {}

  /** Whether `b` is now in the file at `at` (false: it could not be written, a full disk say). */
  write(b: Buffer, at: number): boolean {
    // A block read before holds what the file had then: not these bytes.
    for (let k = Math.floor(at / Block); k * Block < at + b.length; k++) this.blocks.delete(k);
    try {
      for (let done = 0; done < b.length;) done += writeSync(this.fd, b, done, b.length - done, at + done);
      return true;
    } catch {
      return false;
    }
  }

  read(at: number, len: number): Buffer {
    const first = Math.floor(at / Block);
    if (Math.floor((at + len - 1) / Block) !== first || len === 0) return readExactly(this.fd, at, len);
    let block = this.blocks.get(first);
    if (block) this.blocks.delete(first);
    else {
      block = Buffer.allocUnsafe(Block);
      for (let got = 0; got < Block;) {
        const n = readSync(this.fd, block, got, Block - got, first * Block + got);
        if (n === 0) break; // the file's last block
        got += n;
      }
      if (this.blocks.size >= Blocks) this.blocks.delete(this.blocks.keys().next().value!);
    }
    this.blocks.set(first, block);
    return block.subarray(at - first * Block, at - first * Block + len);
  }

  close(): void {
    this.blocks.clear();
    closeSync(this.fd);
  }
}

/** The spill file's blocks kept in memory, and their size. */
const Blocks = 16;
const Block = 64 << 10;

function readExactly(fd: number, at: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let got = 0; got < len;) {
    const n = readSync(fd, b, got, len - got, at + got);
    if (n === 0) throw new Error('stat cache: its spill file was cut short');
    got += n;
  }
  return b;
}

/** Row lookups read one probe at a time up to this many; then the file is read whole. */
const WholeAfter = 64;

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** `len` bytes at `at` of a file of `size` bytes; undefined when the file is shorter. */
function readAt(fd: number, at: number, len: number, size: number): Buffer | undefined {
  if (at + len > size) return undefined;
  const b = Buffer.allocUnsafe(len);
  return readInto(fd, at, len, b) ? b : undefined;
}

/** Reads `len` bytes at `at` into the start of `b`; false when the file ends first. */
function readInto(fd: number, at: number, len: number, b: Buffer): boolean {
  for (let got = 0; got < len;) {
    const n = readSync(fd, b, got, len - got, at + got);
    if (n === 0) return false;
    got += n;
  }
  return true;
}

/**
 * Reads a file forward through a 1 MiB window: rows in order cost one read per MiB. One buffer, read into
 * again for each window: a view of it holds until the next find() (write() copies each row out before that).
 * A new buffer per window was 1 MiB of garbage per MiB of the file, twice per write (the rows chosen, then
 * copied): a one-change build of 200,000 context files held ~20 MB more while it flushed its 22 MB stat cache,
 * until a collection let go of them (bench/RESULTS.md, "Memory at 200,000 files, session 6").
 */
class Reader {
  /** What was read last: `buf` holds the file's bytes from `start` on (the whole file: from 0). */
  buf: Buffer = Buffer.alloc(0);
  private start = 0;
  /** The buffer windows are read into (none with the whole file). */
  private window: Buffer | undefined;

  constructor(
    private readonly fd: number | undefined,
    private readonly size: number,
    whole: Buffer | undefined,
  ) {
    if (whole) this.buf = whole;
    else if (fd === undefined) this.size = 0;
  }

  /**
   * Where `len` bytes at `at` of the file are in `buf` (read in if they were not), or -1 past the end of the
   * file or when it cannot be read.
   */
  find(at: number, len: number): number {
    if (at + len > this.size) return -1;
    if (at >= this.start && at + len <= this.start + this.buf.length) return at - this.start;
    const want = Math.max(len, Math.min(Window, this.size - at));
    if (!this.window || this.window.length < want) this.window = Buffer.allocUnsafe(Math.max(want, Window));
    // Cleared first: a read that fails part way leaves no window that seems to hold the bytes it had.
    this.buf = Buffer.alloc(0);
    this.start = 0;
    try {
      if (!readInto(this.fd!, at, want, this.window)) return -1;
    } catch {
      return -1;
    }
    this.buf = this.window.subarray(0, want);
    this.start = at;
    return 0;
  }

  /** A view of `len` bytes at `at`, valid until the next find() or get(). */
  get(at: number, len: number): Buffer | undefined {
    const o = this.find(at, len);
    return o < 0 ? undefined : this.buf.subarray(o, o + len);
  }
}

const Window = 1 << 20;

/**
 * Gathers small parts into 1 MiB writes (a write per row part would be a syscall and a promise each), in one
 * buffer: a piece is written before the next is asked for (writeFileAtomic awaits each part's write), so the
 * buffer is filled again once the generator resumes (a new one per piece was garbage as Reader's windows were).
 */
class Pieces {
  private readonly buf = Buffer.allocUnsafe(Window);
  private at = 0;

  *add(b: Buffer): Generator<Buffer> {
    let from = 0;
    while (from < b.length) {
      const n = b.copy(this.buf, this.at, from);
      this.at += n;
      from += n;
      if (this.at === this.buf.length) yield* this.flush();
    }
  }
  *end(): Generator<Buffer> {
    if (this.at > 0) yield* this.flush();
  }
  private *flush(): Generator<Buffer> {
    yield this.buf.subarray(0, this.at);
    this.at = 0;
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

/**
 * The path keys of every directory in a listing, in the order of their bytes, one at a time: below a
 * directory, `n` sorts as `n` and what is below it as `n/…` (siblings `n-x`, `n.y` come between).
 */
export function* directoryKeys(listing: Listing): Generator<string> {
  yield '';
  function* below(dir: number, key: string): Generator<string> {
    const names: string[] = [];
    const kids: number[] = [];
    for (let off = listing.block(dir), n = listing.count(dir); n > 0; n--, off = listing.next(off)) {
      const child = listing.child(off);
      if (child === None) continue;
      names.push(listing.nameKey(off));
      kids.push(child);
    }
    // Each directory twice: 2i is the directory itself, 2i + 1 what is below it (its name and a '/').
    const order = Array.from({ length: names.length * 2 }, (_, i) => i);
    order.sort((x, y) => withSlash(names[x >> 1], x & 1, names[y >> 1], y & 1));
    for (const x of order) {
      const k = key === '' ? names[x >> 1] : `${key}/${names[x >> 1]}`;
      if (x & 1) yield* below(kids[x >> 1], k);
      else yield k;
    }
  }
  yield* below(0, '');
}

/** The order of `a` (followed by a '/' when `sa`) and `b` (the same with `sb`), names holding no '/'. */
function withSlash(a: string, sa: number, b: string, sb: number): number {
  if (a === b) return sa - sb;
  if (b.startsWith(a)) return sa && b.charCodeAt(a.length) < 0x2f ? 1 : -1;
  if (a.startsWith(b)) return sb && a.charCodeAt(b.length) < 0x2f ? -1 : 1;
  return a < b ? -1 : 1;
}

/**
 * Removes the temp files of `file` left by builds killed while they wrote it (a save runs beside a RUN's
 * command, so a build stopped then leaves one). writeFileAtomic names each temp after its owner
 * (pid and start time): only those whose owner is gone are removed, never a save under way.
 */
export async function sweepTemps(file: string): Promise<void> {
  const dir = dirname(file);
  const prefix = `.${basename(file)}.`;
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const owner = parseOwner(name);
    if (owner && !pidAlive(owner.pid, owner.start === '0' ? undefined : owner.start))
      await fsp.rm(join(dir, name), { force: true }).catch(() => {});
  }
}
