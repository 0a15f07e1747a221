// The content digest of a context directory as COPY reads it (after .dockerignore and
// --exclude), computed as a Merkle tree so that it costs nothing when nothing changed.
//
// content(D) = sha256 over D's children in name-byte order, each as
//   'f' mode name NUL sha256(content)       a file
//   'l' mode name NUL target NUL            a symlink
//   'd' mode name NUL content(child)        a directory
//   'h' 0    name NUL content(child)        an excluded directory with something re-included below
// (mode: u16 of the permission bits; names and targets are bytes). That is a one-to-one function
// of the list of (path, type, mode, target, content hash) a COPY reads, the list today's key was
// made of, so a key changes exactly when that list does.
//
// The stat cache keeps content(D) beside the stat signature of D's subtree (walk.c), per rule
// set. A directory whose signature is unchanged reuses its digest without a look at its files;
// below one that changed, unchanged subdirectories do the same, and only files whose stat
// changed are read. The per-file list (for the COPY itself and for --explain) is made only
// when a step misses.
import { closeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { decodeName, encodeName, EntryHead, Flag, None, type Listing } from './listing.js';
import { nativeWalker, WalkerUnavailable } from './walk.js';
import { hashFd, hashFdSync, sha256NativeRaw } from './filehash.js';
import type { DirRow } from './statcache.js';
import { keepYoungGenerationSmall, LargeWalk } from './young.js';
import { TreeView, type Rules, type TreeFile, type TreeItem, type Visit } from './tree-view.js';

export type { Rules, TreeFile, TreeItem };

const EMPTY = createHash('sha256').digest();

export class TreeHasher extends TreeView {
  /** Hashes made in this build that no row of the stat cache holds (racy files, long names), by entry offset. */
  private readonly fresh = new Hashes();
  /** Files whose content this build read (the stat cache could not vouch for them). */
  filesRead = 0;

  /** Digest of the rules, the item's path included (exclusions are relative to it). */
  static rulesDigest(item: { relBytes: Buffer }, rules: Rules): Buffer {
    const h = createHash('sha256').update('tsbuild-rules-1\0').update(item.relBytes).update('\0');
    for (const p of rules.ignore.patterns) h.update(`${p.exclusion ? '!' : ''}${p.source}\0`);
    h.update('\0');
    for (const p of rules.exclude?.patterns ?? []) h.update(`${p.exclusion ? '!' : ''}${p.source}\0`);
    return h.digest();
  }

  /** The item's digest for the cache key: its path, mode and content. */
  async digest(item: TreeItem, rules: Rules): Promise<string> {
    const content = await this.content(item, rules);
    const mode = Buffer.alloc(2);
    mode.writeUInt16LE(item.mode & 0o7777);
    return createHash('sha256')
      .update('tsbuild-tree-1\0')
      .update(item.relBytes)
      .update('\0')
      .update(mode)
      .update(content)
      .digest('hex');
  }

  private async content(item: TreeItem, rules: Rules): Promise<Buffer> {
    const ruleDigest = TreeHasher.rulesDigest(item, rules);
    const needNames = rules.ignore.patterns.length > 0 || rules.exclude !== undefined;
    const L = this.listing;

    // 1. Which directories must be looked into, and which files read. A plan keeps its kids as numbers, not
    // an object each (a cold 200,000-file tree made ~240,000): a file or symlink as its entry offset, a
    // directory as its offset + 1 (copied) or + 2 (excluded), its own plan next in `subs`, a file to read as
    // its offset + 3 followed by its index in `pending`. Offsets are multiples of 8 (listing.ts); excluded
    // files and symlinks are not kept.
    // A plan's kids are the run [from, to) of one typed array shared by all plans (U32s), its sub-plans are
    // planned once that run is closed: two arrays per directory (39,200 of them, each with room for 17 elements
    // once pushed to) were ~12 MB of a 200,000-file context's heap, garbage by the time the COPY stages it.
    // A recomputed plan's digest is the 32 bytes at its index in `recomputed` of one buffer (`digests`), not a
    // Buffer of its own (an ArrayBuffer and a memory block each: ~250 bytes a directory, live until the last one
    // was hashed), and every field is there from the start (one added later moved them out of the object).
    type Plan = {
      visit: Visit;
      memo: Buffer | undefined;
      at: number;
      from: number;
      to: number;
      subs: Plan[] | undefined;
    };
    const kids = new U32s();
    const pending = new Pending();
    const recomputed: Plan[] = [];
    const plan = (visit: Visit): Plan => {
      this.mustRead(visit);
      const row = this.stats.row(visit.key);
      const memo = L.dirFlags(visit.dir) & Flag.RacyBelow ? undefined : row?.memo(L.sig(visit.dir), ruleDigest);
      if (memo) return { visit, memo, at: -1, from: 0, to: 0, subs: undefined };
      const p: Plan = { visit, memo: undefined, at: -1, from: kids.length, to: 0, subs: undefined };
      const below: Visit[] = [];
      this.visitChildren(item, visit, rules, needNames, (off, included, sub) => {
        if (sub) {
          kids.push(off + (included ? 1 : 2));
          below.push(sub);
        } else if (!included) return;
        else if (L.kind(off) === 'file' && !this.fresh.has(off) && this.known(off, row) === undefined) {
          kids.push(off + 3);
          kids.push(pending.count);
          pending.add(off, visit);
        } else kids.push(off);
      });
      p.to = kids.length;
      if (below.length > 0) p.subs = below.map(plan);
      p.at = recomputed.push(p) - 1; // children first: plan() recursed before this push
      return p;
    };
    const topVisit = { dir: item.dir, key: item.relBytes.toString('latin1'), rel: item.rel };
    // A large tree the stat cache knows nothing of (a cold build) is planned with a small young generation too.
    if (L.dirs >= LargeWalk / 10 && !this.stats.row(topVisit.key)) keepYoungGenerationSmall();
    const top = plan(topVisit);
    if (pending.count >= LargeWalk) keepYoungGenerationSmall();

    // 2. Read what the stat cache could not vouch for: their hashes stay in `read` (by pending index) until the
    // rows of their directories hold them.
    const read = await this.hashAll(pending);

    // 3. Digests, children before parents, and the rows that remember them. Each directory's
    // records are laid out in one buffer and hashed at once: per-entry hash updates and buffers
    // were most of a cold tree's JS time. Two passes over the kids: the size, then the bytes.
    const digests = Buffer.allocUnsafe(recomputed.length * 32);
    let hashed = 0; // plans recomputed[0, hashed) have their digest
    const done = (p: Plan) => p.memo !== undefined || p.at < hashed;
    const digestOf = (p: Plan): Buffer => p.memo ?? digests.subarray(p.at * 32, p.at * 32 + 32);
    for (const p of recomputed) {
      const row = this.stats.row(p.visit.key);
      const justRead = new Map<number, Buffer>();
      // Each kid's record: its type and what follows its name; a kid left out is skipped.
      const each = (fn: (off: number, type: number, tail: Buffer) => void) => {
        for (let i = p.from, s = 0; i < p.to; i++) {
          const k = kids.at(i);
          const off = k & ~7;
          if ((k & 7) === 3) {
            const n = kids.at(++i);
            fn(off, 0x66, read.subarray(n * 33 + 1, n * 33 + 33)); // 'f'
          } else if (k & 7) {
            const sub = p.subs![s++];
            if (!done(sub)) throw new Error('internal: tree digest out of order');
            const tail = digestOf(sub);
            if ((k & 7) === 1)
              fn(off, 0x64, tail); // 'd'
            else if (!tail.equals(EMPTY)) fn(off, 0x68, tail); // 'h'
          } else if (L.kind(off) === 'file') fn(off, 0x66, this.fresh.get(off) ?? this.known(off, row)!);
          else fn(off, 0x6c, L.link(off)); // 'l': target, NUL
        }
      };
      let size = 0;
      each((off, type, tail) => (size += 4 + L.nameLen(off) + tail.length + (type === 0x6c ? 1 : 0)));
      const buf = Buffer.allocUnsafe(size);
      let at = 0;
      each((off, type, tail) => {
        buf[at] = type;
        buf.writeUInt16LE(type === 0x68 ? 0 : L.mode(off) & 0o7777, at + 1);
        at += 3;
        at += L.buf.copy(buf, at, off + EntryHead, off + EntryHead + L.nameLen(off));
        buf[at++] = 0;
        at += tail.copy(buf, at);
        if (type === 0x6c) buf[at++] = 0;
      });
      if (at !== size) throw new Error('internal: tree records sized wrong');
      createHash('sha256')
        .update(buf)
        .digest()
        .copy(digests, p.at * 32);
      hashed++;
      for (let i = p.from; i < p.to; i++) {
        if ((kids.at(i) & 7) !== 3) continue;
        const off = kids.at(i) & ~7;
        const n = kids.at(++i);
        const hash = read.subarray(n * 33 + 1, n * 33 + 33);
        justRead.set(off, hash);
        // What the row cannot hold (remember) is kept here for the COPY and its --explain record.
        if (L.flags(off) & Flag.Racy || L.nameLen(off) > 255) this.fresh.set(off, hash);
      }
      this.remember(p.visit, ruleDigest, digestOf(p), justRead);
    }
    return Buffer.from(digestOf(top)); // a copy: a view would keep every directory's digest
  }

  /**
   * Every file of the item, the item first, sorted by path as the flat key of earlier versions
   * was; for the COPY on a miss and for --explain. Synchronous: content hashes come from this
   * build or the stat cache (a file neither knows is read here).
   */
  files(item: TreeItem, rules: Rules): TreeFile[] {
    return [...this.walk(item, rules, true, 'path')];
  }

  /**
   * The files of the item, the item first, one at a time, so that a COPY or its --explain record can go
   * through a tree of any size without a record per file kept alive. `order`: 'layer' (depth first, names by
   * their bytes), or 'path': what files() lists, sorted by the decoded path as a string (`a`, `a-b`, `a/c`),
   * with no list to sort. `withHash`: content hashes too (as files() gives them), else none are looked up.
   */
  *walk(item: TreeItem, rules: Rules, withHash: boolean, order: 'layer' | 'path' = 'layer'): Generator<TreeFile> {
    const L = this.listing;
    yield {
      rel: '',
      kind: 'dir',
      host: this.hostOf(item.rel),
      mode: item.mode & 0o7777,
      mtimeMs: item.mtimeMs,
      size: 0,
    };
    const prefix = item.rel === '' ? 0 : item.rel.length + 1;
    // An excluded directory with something re-included below it (`build` then `!build/keep`) is
    // still written as a directory, with its own mode, before the first thing copied from it, as
    // BuildKit does: a layer does not leave a parent for whoever unpacks it to make up.
    type Pending = { f: TreeFile; out: boolean };
    type Kid = { off: number; included: boolean; sub?: Visit };
    const self = this;
    const fileOf = (visit: Visit, off: number, included: boolean, row: DirRow | undefined): TreeFile => {
      const rel = self.relOf(visit, off);
      const kind = L.kind(off) as TreeFile['kind'];
      const f: TreeFile = {
        rel: rel.slice(prefix),
        kind,
        host: self.hostOf(rel),
        mode: L.mode(off) & 0o7777,
        mtimeMs: L.mtimeMs(off),
        size: L.size(off),
      };
      if (included) {
        if (kind === 'symlink') f.linkname = decodeName(L.link(off));
        if (kind === 'file') {
          if (withHash)
            f.hash = (self.fresh.get(off) ?? self.known(off, row) ?? self.hashNow(visit, off)).toString('hex');
          f.ino = L.ino(off);
        }
      }
      return f;
    };
    const kidsOf = (visit: Visit): Kid[] => {
      self.mustRead(visit);
      const kids: Kid[] = [];
      self.visitChildren(item, visit, rules, true, (off, included, sub) => {
        if (included || sub) kids.push({ off, included, sub });
      });
      return kids;
    };
    function* layer(visit: Visit, parents: Pending[]): Generator<TreeFile> {
      const row = withHash ? self.stats.row(visit.key) : undefined;
      for (const { off, included, sub } of kidsOf(visit)) {
        const f = fileOf(visit, off, included, row);
        if (included) {
          for (const p of parents) {
            if (p.out) continue;
            p.out = true;
            yield p.f;
          }
          yield f;
        }
        if (sub) yield* layer(sub, included ? [] : [...parents, { f, out: false }]);
      }
    }
    // Sorted paths, a directory at a time: below a directory, an entry `n` sorts as `n` and what is below a
    // directory `n` as `n/…`, so `n` itself, then the siblings between `n` and `n/` (`n-x`, `n.y`), then the
    // inside of `n`. No name holds a '/', so this is the order of the whole paths.
    function* path(visit: Visit): Generator<TreeFile> {
      const row = withHash ? self.stats.row(visit.key) : undefined;
      const items: { key: string; kid: Kid; inside: boolean }[] = [];
      for (const kid of kidsOf(visit)) {
        const name = L.nameText(kid.off);
        if (kid.included || (kid.sub && self.anyIncluded(item, kid.sub, rules)))
          items.push({ key: name, kid, inside: false });
        if (kid.sub) items.push({ key: `${name}/`, kid, inside: true });
      }
      items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      for (const { kid, inside } of items) {
        if (inside) yield* path(kid.sub!);
        else yield fileOf(visit, kid.off, kid.included, row);
      }
    }
    const top: Visit = { dir: item.dir, key: item.relBytes.toString('latin1'), rel: item.rel };
    yield* order === 'layer' ? layer(top, []) : path(top);
  }

  /** Whether a COPY reads anything below an excluded directory (then the directory is copied too). */
  private anyIncluded(item: TreeItem, visit: Visit, rules: Rules): boolean {
    this.mustRead(visit);
    let found = false;
    this.visitChildren(item, visit, rules, true, (_off, included, sub) => {
      found ||= included || (sub !== undefined && this.anyIncluded(item, sub, rules));
    });
    return found;
  }

  /** The content hash of a single regular file named by a COPY source. */
  async fileHash(rel: string, off: number): Promise<Buffer> {
    const L = this.listing;
    const slash = rel.lastIndexOf('/');
    const parent = encodeName(slash < 0 ? '' : rel.slice(0, slash));
    const key = parent.toString('latin1');
    let h = this.fresh.get(off) ?? this.known(off, this.stats.row(key));
    if (h) return h;
    const visit: Visit = { dir: None, key, rel: slash < 0 ? '' : rel.slice(0, slash) };
    try {
      const fd = this.openFile(visit, off);
      try {
        h = await hashFd(fd, L.size(off));
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      throw this.unreadable(rel, e);
    }
    this.fresh.set(off, h);
    this.filesRead++;
    if (!(L.flags(off) & Flag.Racy)) this.stats.addFile(key, L.name(off), L.buf, L.statAt(off), h);
    return h;
  }

  private hashNow(visit: Visit, off: number): Buffer {
    try {
      const fd = this.openFile(visit, off);
      let h: Buffer;
      try {
        h = hashFdSync(fd);
      } finally {
        closeSync(fd);
      }
      this.fresh.set(off, h);
      this.filesRead++;
      return h;
    } catch (e) {
      throw this.unreadable(this.relOf(visit, off), e);
    }
  }

  /**
   * Hashes files the stat cache did not know: a few here, more by tsbuild-walk --sha256 on every
   * core (SHA-NI, no per-file JS; a cold 20,000-file tree in a quarter of what two sha256sum
   * processes took). Their hashes in the order of `files`, as the walker answers: 33 bytes each, 0 then the hash.
   */
  private async hashAll(files: Pending): Promise<Buffer> {
    const count = files.count;
    this.filesRead += count;
    const walker = nativeWalker();
    const sums =
      count >= 64 && walker
        ? await sha256NativeRaw(
            walker,
            { [Symbol.iterator]: () => files.paths(this.listing) },
            count,
            this.contextDir,
          ).catch((e) => {
            if (e instanceof WalkerUnavailable) return undefined; // hashed here instead
            throw e;
          })
        : undefined;
    if (sums) {
      for (let i = 0; i < count; i++)
        if (sums[i * 33] !== 0) throw this.unreadable(this.relOf(files.visit(i), files.off(i)), sums[i * 33]);
      return sums;
    }
    const out = Buffer.alloc(count * 33);
    for (let i = 0; i < count; i++) {
      try {
        const fd = this.openFile(files.visit(i), files.off(i));
        try {
          (await hashFd(fd, this.listing.size(files.off(i)))).copy(out, i * 33 + 1);
        } finally {
          closeSync(fd);
        }
      } catch (e) {
        throw this.unreadable(this.relOf(files.visit(i), files.off(i)), e);
      }
    }
    return out;
  }

  /** Writes a recomputed directory's row: its files' hashes, and its digest under these rules. */
  private remember(visit: Visit, rules: Buffer, digest: Buffer, justRead: Map<number, Buffer>): void {
    const L = this.listing;
    const old = this.stats.row(visit.key);
    const keep: { off: number; hash: Buffer }[] = [];
    let size = 0;
    for (const off of L.entries(visit.dir)) {
      if (L.kind(off) !== 'file' || L.flags(off) & Flag.Racy || L.nameLen(off) > 255) continue;
      const hash = justRead.get(off) ?? this.fresh.get(off) ?? old?.hash(L.nameKey(off), L.buf, L.statAt(off));
      if (!hash) continue;
      keep.push({ off, hash });
      size += 1 + L.nameLen(off) + 72;
    }
    const files = Buffer.allocUnsafe(size);
    let at = 0;
    for (const { off, hash } of keep) {
      files[at++] = L.nameLen(off);
      at += L.buf.copy(files, at, off + EntryHead, off + EntryHead + L.nameLen(off));
      at += L.buf.copy(files, at, L.statAt(off), L.statAt(off) + 40);
      at += hash.copy(files, at);
    }
    const stable = !(L.dirFlags(visit.dir) & Flag.RacyBelow);
    this.stats.put(visit.key, stable ? L.sig(visit.dir) : undefined, stable ? { rules, digest } : undefined, files);
  }
}

/**
 * Content hashes by listing offset, 32 bytes each in one growing buffer: a Buffer object (and a map entry
 * holding it) per file of a cold 200,000-file context was ~40 MB of heap kept for the whole build.
 */
export class Hashes {
  private readonly slot = new Map<number, number>();
  private arena = Buffer.allocUnsafe(32 * 1024);

  has(off: number): boolean {
    return this.slot.has(off);
  }

  /** The hash: a view of the buffer (a hash is set once; a grown buffer leaves earlier views as they were). */
  get(off: number): Buffer | undefined {
    const i = this.slot.get(off);
    return i === undefined ? undefined : this.arena.subarray(i * 32, i * 32 + 32);
  }

  set(off: number, hash: Buffer): void {
    let i = this.slot.get(off);
    if (i === undefined) {
      i = this.slot.size;
      if ((i + 1) * 32 > this.arena.length) {
        const grown = Buffer.allocUnsafe(this.arena.length * 2);
        this.arena.copy(grown);
        this.arena = grown;
      }
      this.slot.set(off, i);
    }
    hash.copy(this.arena, i * 32);
  }
}

/**
 * Numbers below 2^32 pushed one at a time, in one typed array grown by doubling: outside V8's heap, 4 bytes each. As
 * arrays, a cold 200,000-file tree's plan (~440,000 numbers) and files to hash were ~9 MB of live heap while it was
 * planned and hashed, which V8's old space then grew to 1.5 times (bench/RESULTS.md, "Memory at 200,000 files,
 * continued").
 */
export class U32s {
  private a = new Uint32Array(1024);
  length = 0;

  push(v: number): void {
    if (this.length === this.a.length) {
      const grown = new Uint32Array(this.a.length * 2);
      grown.set(this.a);
      this.a = grown;
    }
    this.a[this.length++] = v;
  }

  at(i: number): number {
    return this.a[i];
  }
}

/**
 * Files to hash: their entry offsets and the directory each is in. A directory's files are added one after the
 * other, so each file keeps the index of its directory's Visit, not a reference of its own.
 */
class Pending {
  private readonly offs = new U32s();
  private readonly dirOf = new U32s();
  private readonly dirs: Visit[] = [];

  get count(): number {
    return this.offs.length;
  }
  off(i: number): number {
    return this.offs.at(i);
  }
  visit(i: number): Visit {
    return this.dirs[this.dirOf.at(i)];
  }

  add(off: number, visit: Visit): void {
    if (this.dirs[this.dirs.length - 1] !== visit) this.dirs.push(visit);
    this.offs.push(off);
    this.dirOf.push(this.dirs.length - 1);
  }

  /** Context-relative paths, each ended by NUL, in pieces of about 1 MiB (as one buffer, 15 MB for 200,000 files). */
  *paths(L: Listing): Generator<Buffer> {
    const Piece = 1 << 20;
    let out = Buffer.allocUnsafe(Piece);
    let at = 0;
    for (let i = 0; i < this.count; i++) {
      const off = this.off(i);
      const key = this.visit(i).key; // latin1: a byte a character
      const size = key.length + 1 + L.nameLen(off) + 1;
      if (at + size > out.length) {
        if (at > 0) yield out.subarray(0, at);
        out = Buffer.allocUnsafe(Math.max(Piece, size));
        at = 0;
      }
      if (key.length) {
        at += out.write(key, at, 'latin1');
        out[at++] = 0x2f;
      }
      at += L.buf.copy(out, at, off + EntryHead, off + EntryHead + L.nameLen(off));
      out[at++] = 0;
    }
    if (at > 0) yield out.subarray(0, at);
  }
}
