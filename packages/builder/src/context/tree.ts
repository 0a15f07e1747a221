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
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createReadStream, readFileSync } from 'node:fs';
import { BuildError } from '../build/errors.js';
import type { IgnoreMatcher } from './ignore.js';
import { decodeName, displayName, encodeName, Flag, isEscaped, None, type Listing } from './listing.js';
import { FileRecords, type StatCache } from './statcache.js';

/** What a COPY reads of a directory besides the directory itself. */
export interface Rules {
  ignore: IgnoreMatcher;
  /** --exclude patterns, matched against paths relative to the item. */
  exclude: IgnoreMatcher | undefined;
}

/** A directory of the context named by a COPY source. */
export interface TreeItem {
  /** Context-relative path ('' for the context itself), and the same as bytes. */
  rel: string;
  relBytes: Buffer;
  /** Its directory index in the listing. */
  dir: number;
  mode: number;
  mtimeMs: number;
}

/** One file of a copied tree, in the order and shape a COPY and its key use. */
export interface TreeFile {
  /** Path below the item ('' for the item itself). */
  rel: string;
  kind: 'file' | 'dir' | 'symlink';
  /** Host path; undefined when the name is not UTF-8 (Node's string paths cannot name it). */
  host: string | undefined;
  mode: number;
  mtimeMs: number;
  size: number;
  linkname?: string;
  hash?: string;
}

const EMPTY = createHash('sha256').digest();

/** One directory below the item as the rules see it, and how it must be treated. */
interface Visit {
  dir: number;
  /** Path key (latin1 of the bytes) for the stat cache; bytes for reading files. */
  key: string;
  bytes: Buffer;
  /** Decoded context-relative path, when names are needed (rules or expansion). */
  rel: string | undefined;
}

export class TreeHasher {
  /** Hashes made in this build, by listing entry offset. */
  private readonly fresh = new Map<number, Buffer>();
  /** Files whose content this build read (the stat cache could not vouch for them). */
  filesRead = 0;
  private readonly dirBytes: Buffer;

  constructor(
    private readonly listing: Listing,
    private readonly stats: StatCache,
    private readonly contextDir: string,
  ) {
    this.dirBytes = Buffer.from(contextDir);
  }

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
    return createHash('sha256').update('tsbuild-tree-1\0').update(item.relBytes).update('\0').update(mode).update(content).digest('hex');
  }

  private async content(item: TreeItem, rules: Rules): Promise<Buffer> {
    const ruleDigest = TreeHasher.rulesDigest(item, rules);
    const needNames = rules.ignore.patterns.length > 0 || rules.exclude !== undefined;
    const L = this.listing;

    // 1. Which directories must be looked into, and which files read.
    type Plan = { visit: Visit; memo?: Buffer; kids: { off: number; sub?: Plan; included: boolean }[] };
    const pending: { off: number; path: Buffer; rel: () => string }[] = [];
    const recomputed: Plan[] = [];
    const plan = (visit: Visit): Plan => {
      this.mustRead(visit);
      const sig = L.sig(visit.dir);
      const row = this.stats.row(visit.key);
      const memo = L.dirFlags(visit.dir) & Flag.RacyBelow ? undefined : row?.memo(sig, ruleDigest);
      if (memo) return { visit, memo, kids: [] };
      const p: Plan = { visit, kids: [] };
      this.visitChildren(item, visit, rules, needNames, (off, included, sub) => {
        if (sub) {
          p.kids.push({ off, included, sub: plan(sub) });
          return;
        }
        p.kids.push({ off, included });
        if (!included || L.kind(off) !== 'file') return;
        if (this.known(off, row) === undefined) pending.push({ off, path: this.abs(visit, off), rel: () => this.relOf(visit, off) });
      });
      recomputed.push(p); // children first: plan() recursed before this push
      return p;
    };
    const top = plan({ dir: item.dir, key: item.relBytes.toString('latin1'), bytes: item.relBytes, rel: item.rel });

    // 2. Read what the stat cache could not vouch for.
    await this.hashAll(pending);

    // 3. Digests, children before parents, and the rows that remember them.
    const digests = new Map<Plan, Buffer>();
    const digestOf = (p: Plan): Buffer => p.memo ?? digests.get(p)!;
    for (const p of recomputed) {
      const h = createHash('sha256');
      for (const k of p.kids) {
        if (k.sub) {
          if (!k.sub.memo && !digests.has(k.sub)) throw new Error('internal: tree digest out of order');
          const d = digestOf(k.sub);
          if (k.included) h.update(record('d', L.mode(k.off), L.name(k.off))).update(d);
          else if (!d.equals(EMPTY)) h.update(record('h', 0, L.name(k.off))).update(d);
          continue;
        }
        if (!k.included) continue;
        const kind = L.kind(k.off);
        if (kind === 'file') h.update(record('f', L.mode(k.off), L.name(k.off))).update(this.fresh.get(k.off) ?? this.known(k.off, this.stats.row(p.visit.key))!);
        else if (kind === 'symlink') h.update(record('l', L.mode(k.off), L.name(k.off))).update(L.link(k.off)).update(NUL);
      }
      const d = h.digest();
      digests.set(p, d);
      this.remember(p.visit, ruleDigest, d);
    }
    return digestOf(top);
  }

  /**
   * Every file of the item, the item first, sorted by path as the flat key of earlier versions
   * was; for the COPY on a miss and for --explain. Synchronous: content hashes come from this
   * build or the stat cache (a file neither knows is read here).
   */
  files(item: TreeItem, rules: Rules): TreeFile[] {
    const L = this.listing;
    const out: TreeFile[] = [{ rel: '', kind: 'dir', host: this.hostOf(item.relBytes, item.rel), mode: item.mode & 0o7777, mtimeMs: item.mtimeMs, size: 0 }];
    const prefix = item.rel === '' ? 0 : item.rel.length + 1;
    const walk = (visit: Visit) => {
      this.mustRead(visit);
      const row = this.stats.row(visit.key);
      this.visitChildren(item, visit, rules, true, (off, included, sub) => {
        if (included) {
          const rel = this.relOf(visit, off);
          const kind = L.kind(off) as TreeFile['kind'];
          const f: TreeFile = { rel: rel.slice(prefix), kind, host: this.hostOf(this.abs(visit, off, false), rel), mode: L.mode(off) & 0o7777, mtimeMs: L.mtimeMs(off), size: L.size(off) };
          if (kind === 'symlink') f.linkname = decodeName(L.link(off));
          if (kind === 'file') f.hash = (this.fresh.get(off) ?? this.known(off, row) ?? this.hashNow(visit, off)).toString('hex');
          out.push(f);
        }
        if (sub) walk(sub);
      });
    };
    walk({ dir: item.dir, key: item.relBytes.toString('latin1'), bytes: item.relBytes, rel: item.rel });
    const [first, ...rest] = out;
    rest.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
    return [first!, ...rest];
  }

  /**
   * Calls `fn` for each child of a directory that the COPY can see: `included` when the entry
   * itself is copied, `sub` for a directory to look into. The same rules, in the same order, as
   * the flat walk of earlier versions: a directory .dockerignore excludes with nothing
   * re-included below is skipped whole; other excluded entries are left out one by one;
   * sockets, fifos and devices are not copied.
   */
  private visitChildren(item: TreeItem, visit: Visit, rules: Rules, needNames: boolean, fn: (off: number, included: boolean, sub?: Visit) => void): void {
    const L = this.listing;
    const prefix = item.rel === '' ? 0 : item.rel.length + 1;
    for (const off of L.entries(visit.dir)) {
      const kind = L.kind(off);
      let included = kind !== 'other';
      let rel: string | undefined;
      if (needNames) {
        rel = this.relOf(visit, off);
        if (kind === 'dir' && rules.ignore.skipsDir(rel)) continue;
        if (included && rules.ignore.ignores(rel)) included = false;
        if (included && rules.exclude?.ignores(rel.slice(prefix))) included = false;
      }
      if (kind === 'dir') {
        const child = L.child(off);
        if (child === None) throw new Error('internal: directory without a listing');
        const name = L.name(off);
        const bytes = visit.bytes.length === 0 ? name : Buffer.concat([visit.bytes, SLASH, name]);
        fn(off, included, { dir: child, key: visit.key === '' ? L.nameKey(off) : `${visit.key}/${L.nameKey(off)}`, bytes, rel });
      } else if (kind !== 'other') fn(off, included);
    }
  }

  /** The content hash of a single regular file named by a COPY source. */
  async fileHash(rel: string, off: number): Promise<Buffer> {
    const L = this.listing;
    const slash = rel.lastIndexOf('/');
    const parent = encodeName(slash < 0 ? '' : rel.slice(0, slash));
    const key = parent.toString('latin1');
    let h = this.fresh.get(off) ?? this.known(off, this.stats.row(key));
    if (h) return h;
    const visit: Visit = { dir: None, key, bytes: parent, rel: slash < 0 ? '' : rel.slice(0, slash) };
    try {
      h = await hashFile(this.abs(visit, off), L.size(off));
    } catch {
      throw this.vanished(rel);
    }
    this.fresh.set(off, h);
    this.filesRead++;
    if (!(L.flags(off) & Flag.Racy)) this.stats.addFile(key, L.name(off), L.buf, L.statAt(off), h);
    return h;
  }

  /** A directory the walker could not read fails the COPY that needs it, and only that one. */
  private mustRead(visit: Visit): void {
    if (this.listing.dirFlags(visit.dir) & Flag.Unreadable) {
      throw new BuildError(`cannot read ${displayName(visit.rel ?? decodeName(visit.bytes))} in the build context (${this.contextDir}): permission denied, or it changed during the build`);
    }
  }

  private relOf(visit: Visit, off: number): string {
    const name = this.listing.nameText(off);
    const base = visit.rel ?? decodeName(visit.bytes);
    return base === '' ? name : `${base}/${name}`;
  }

  /** Host path of an entry as bytes (absolute), or context-relative with abs=false. */
  private abs(visit: Visit, off: number, absolute = true): Buffer {
    const name = this.listing.name(off);
    const rel = visit.bytes.length === 0 ? name : Buffer.concat([visit.bytes, SLASH, name]);
    return absolute ? Buffer.concat([this.dirBytes, SLASH, rel]) : rel;
  }

  private hostOf(relBytes: Buffer, rel: string): string | undefined {
    if (isEscaped(rel)) return undefined;
    return relBytes.length === 0 ? this.contextDir : `${this.contextDir}/${rel}`;
  }

  /** The stat cache's hash of a file, unless the file is too new for its stat to vouch for it. */
  private known(off: number, row: ReturnType<StatCache['row']>): Buffer | undefined {
    const L = this.listing;
    if (L.flags(off) & Flag.Racy) return undefined;
    return row?.hash(L.nameKey(off), L.buf, L.statAt(off));
  }

  private hashNow(visit: Visit, off: number): Buffer {
    const path = this.abs(visit, off);
    try {
      const h = createHash('sha256').update(readFileSync(path)).digest();
      this.fresh.set(off, h);
      this.filesRead++;
      return h;
    } catch {
      throw this.vanished(this.relOf(visit, off));
    }
  }

  private vanished(rel: string): BuildError {
    return new BuildError(`${displayName(rel)} in the build context (${this.contextDir}) could not be read: it changed during the build`);
  }

  /**
   * Hashes files the stat cache did not know: a few hundred here, more by sha256sum in two
   * child processes (C is several times faster per small file than a read and a hash in JS,
   * and the second process uses the other core).
   */
  private async hashAll(files: { off: number; path: Buffer; rel: () => string }[]): Promise<void> {
    this.filesRead += files.length;
    if (files.length >= 256) {
      const half = Math.ceil(files.length / 2);
      const sums = await Promise.all([sha256sum(files.slice(0, half).map((f) => f.path)), sha256sum(files.slice(half).map((f) => f.path))]).catch(() => undefined);
      if (sums) {
        [...sums[0], ...sums[1]].forEach((h, i) => this.fresh.set(files[i]!.off, h));
        return;
      }
    }
    for (const f of files) {
      try {
        this.fresh.set(f.off, await hashFile(f.path, this.listing.size(f.off)));
      } catch {
        throw this.vanished(f.rel());
      }
    }
  }

  /** Writes a recomputed directory's row: its files' hashes, and its digest under these rules. */
  private remember(visit: Visit, rules: Buffer, digest: Buffer): void {
    const L = this.listing;
    const old = this.stats.row(visit.key);
    const records = new FileRecords();
    for (const off of L.entries(visit.dir)) {
      if (L.kind(off) !== 'file' || L.flags(off) & Flag.Racy) continue;
      const h = this.fresh.get(off) ?? old?.hash(L.nameKey(off), L.buf, L.statAt(off));
      if (h) records.add(L.name(off), L.buf, L.statAt(off), h);
    }
    const stable = !(L.dirFlags(visit.dir) & Flag.RacyBelow);
    this.stats.put(visit.key, stable ? L.sig(visit.dir) : undefined, stable ? { rules, digest } : undefined, records.done());
  }
}

const NUL = Buffer.of(0);
const SLASH = Buffer.from('/');

function record(type: 'f' | 'l' | 'd' | 'h', mode: number, name: Buffer): Buffer {
  const r = Buffer.allocUnsafe(3 + name.length + 1);
  r[0] = type.charCodeAt(0);
  r.writeUInt16LE(mode & 0o7777, 1);
  name.copy(r, 3);
  r[3 + name.length] = 0;
  return r;
}

/** Small files are read whole and synchronously: a stream per file costs more than the file. */
export function hashFile(path: Buffer | string, size = Infinity): Promise<Buffer> {
  if (size <= 1 << 20) {
    try {
      return Promise.resolve(createHash('sha256').update(readFileSync(path)).digest());
    } catch (e) {
      return Promise.reject(e);
    }
  }
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest()));
  });
}

/** sha256 of each path, in order, by `xargs -0 sha256sum -z` (NUL-separated: any file name). */
function sha256sum(paths: Buffer[]): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('xargs', ['-0', 'sha256sum', '-z', '--'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', () => {});
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`sha256sum exited ${code}`));
      const all = Buffer.concat(out);
      const sums: Buffer[] = [];
      for (let at = 0; at < all.length; ) {
        const end = all.indexOf(0, at);
        if (end < 0) break;
        const hex = all.toString('latin1', at, at + 64);
        if (!/^[0-9a-f]{64}$/.test(hex)) return reject(new Error('unexpected sha256sum output'));
        sums.push(Buffer.from(hex, 'hex'));
        at = end + 1;
      }
      if (sums.length !== paths.length) return reject(new Error('sha256sum output does not match its input'));
      resolve(sums);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(Buffer.concat(paths.flatMap((p) => [p, NUL])));
  });
}
