// The build context: a directory on the host, seen through .dockerignore, never escaped.
// It is listed once per build (walk.ts), started as soon as the CLI knows the context and the
// store (start); COPY/ADD sources resolve in that listing, symlinks followed only inside the
// context; a directory source is digested through the stat cache (tree.ts) without per-file work
// when nothing changed.
import { closeSync, constants as fsc, fstatSync, promises as fsp, openSync, readFileSync, realpathSync } from 'node:fs';
import { join, posix, relative, resolve } from 'node:path';
import { haveProcFd, O_CLOEXEC, O_PATH, openBeneath, self } from '@tsbuild/sys';
import { BuildError } from '../errors.js';
import { IgnoreMatcher, cleanPath, globToRegExp, hasGlob } from './ignore.js';
import { None, decodeName, encodeName, type Kind, type Listing } from './listing.js';
import { StatCache } from './statcache.js';
import { TreeHasher, type Rules, type TreeFile, type TreeItem } from './tree.js';
import { trace } from '../trace.js';
import { listContext, nativeWalker, SmallContext, walkArgs, type SpawnedWalker } from './walk.js';
import { dropEarly, sameWalk, type EarlyWalk } from './early.js';

/** A COPY source found in the context. */
export interface ContextEntry {
  /** Path relative to the context root, '/'-separated ('' for the root). */
  rel: string;
  abs: string;
  kind: Kind;
  mode: number;
  size: number;
  mtimeMs: number;
  /** A symlink's target. */
  linkname?: string;
  /** Content hash of a regular file (hex). */
  hash?: string;
  /** For a directory: what tree.ts digests and expands. */
  tree?: TreeItem;
  /** Its offset in the listing (not for the root). */
  at?: number;
}

export class BuildContext {
  private tree: Promise<TreeHasher> | undefined;
  /** Set once the listing is in: expansion on a cache miss is synchronous. */
  private hasherNow: TreeHasher | undefined;

  private constructor(
    readonly dir: string,
    readonly ignore: IgnoreMatcher,
    readonly stats: StatCache,
    private readonly listing: Promise<Listing>,
    private readonly rootStat: { mode: number; mtimeMs: number },
  ) {
    listing.catch(() => {});
  }

  /**
   * Reads the .dockerignore and starts the listing (the longest part of opening a large context), as
   * early as the caller knows the context, the Dockerfile and the store: open() finishes the work. An
   * error reading the .dockerignore is open()'s, not start()'s, so it is said where it always was.
   */
  static start(
    dir: string,
    dockerfile: string | undefined,
    statCacheDir: string | undefined,
    walker?: string,
    early?: EarlyWalk,
  ): ContextStart {
    return new ContextStart(dir, dockerfile, statCacheDir, walker, early);
  }

  static async open(
    dir: string,
    dockerfile: string | undefined,
    statCacheDir: string | undefined,
  ): Promise<BuildContext> {
    return BuildContext.start(dir, dockerfile, statCacheDir).open();
  }

  /** For ContextStart.open only. */
  static async opened(started: {
    dir: string;
    ignore: IgnoreMatcher;
    statCacheDir: string | undefined;
    listing: Promise<Listing>;
  }): Promise<BuildContext> {
    const { dir, ignore, statCacheDir, listing } = started;
    const root = await fsp.stat(dir);
    return new BuildContext(dir, ignore, StatCache.load(statCacheDir, dir), listing, {
      mode: root.mode,
      mtimeMs: root.mtimeMs,
    });
  }

  private hasher(): Promise<TreeHasher> {
    return (this.tree ??= this.listing.then((l) => (this.hasherNow = new TreeHasher(l, this.stats, this.dir))));
  }

  /** Host path of a context-relative path; callers pass cleaned paths only (so no join()). */
  abs(rel: string): string {
    return rel === '' ? this.dir : `${this.dir}/${rel}`;
  }

  ignored(rel: string): boolean {
    return rel !== '' && this.ignore.ignores(rel);
  }

  /**
   * Resolves a COPY source (possibly with wildcards) to the matching top-level entries, with
   * regular files hashed. Paths outside the context are clamped to it, as BuildKit does.
   */
  async match(source: string): Promise<ContextEntry[]> {
    const L = await this.listing;
    const cleaned = cleanPath(source);
    const rel = cleaned === '.' ? '' : cleaned;
    let found: string[];
    if (!hasGlob(rel)) {
      found = [rel];
    } else {
      // Expand component by component; each component may be a glob.
      let current: string[] = [''];
      for (const part of rel.split('/')) {
        const next: string[] = [];
        for (const base of current) {
          if (!hasGlob(part)) {
            next.push(base ? `${base}/${part}` : part);
            continue;
          }
          const at = this.resolve(L, base);
          if (!at || at.dir === None) continue;
          const re = globToRegExp(part);
          const names = L.entries(at.dir).map((off) => L.nameText(off));
          for (const n of names.sort()) if (re.test(n)) next.push(base ? `${base}/${n}` : n);
        }
        current = next;
      }
      found = current;
    }
    const out: ContextEntry[] = [];
    for (const r of found) {
      if (this.ignored(r)) continue;
      const at = this.resolve(L, r);
      if (!at) continue;
      if (at.rel !== r && this.ignored(at.rel)) continue;
      out.push(this.entry(L, at));
    }
    const files = out.filter((e) => e.kind === 'file');
    if (files.length > 0) {
      const h = await this.hasher();
      for (const e of files) e.hash = (await h.fileHash(e.rel, e.at!)).toString('hex');
    }
    return out;
  }

  /** The content digest of a directory entry, for the cache key. */
  async treeDigest(entry: ContextEntry, exclude: IgnoreMatcher | undefined): Promise<string> {
    return (await this.hasher()).digest(entry.tree!, this.rules(exclude));
  }

  /** Every file a COPY of a directory entry reads; synchronous, for an entry match() returned. */
  treeFiles(entry: ContextEntry, exclude: IgnoreMatcher | undefined): TreeFile[] {
    if (!this.hasherNow) throw new Error('internal: treeFiles before the context was listed');
    return this.hasherNow.files(entry.tree!, this.rules(exclude));
  }

  /**
   * The same files one at a time, in the order of a layer (tree.ts walk), for a COPY that keeps no record per
   * file; `withHash` adds content hashes; `order` 'path' gives them sorted as treeFiles does. Synchronous, for
   * an entry match() returned.
   */
  treeWalk(
    entry: ContextEntry,
    exclude: IgnoreMatcher | undefined,
    withHash: boolean,
    order: 'layer' | 'path' = 'layer',
  ): Iterable<TreeFile> {
    const hasher = this.hasherNow;
    if (!hasher) throw new Error('internal: treeWalk before the context was listed');
    return { [Symbol.iterator]: () => hasher.walk(entry.tree!, this.rules(exclude), withHash, order) };
  }

  /** How many files this build has read to hash them (0 when the stat cache knew them all). */
  filesRead(): number {
    return this.hasherNow?.filesRead ?? 0;
  }

  /**
   * Writes what this build learned so far now, keeping it readable (while a RUN's command runs, once no step
   * will read the context again): save() at the end then has nothing left to write. Only for a context the
   * native walker lists: a small one's stat cache takes well under a millisecond to write at the end.
   */
  async flush(): Promise<void> {
    const listing = await this.listing.catch(() => undefined);
    if (listing && listing.entryCount() > SmallContext) await this.stats.flush(listing);
  }

  /** Writes back what this build learned (file hashes, subtree digests). */
  async save(): Promise<void> {
    const listing = await this.listing.catch(() => undefined);
    await this.stats.save(listing);
  }

  /** Lets go of the stat cache's file without saving (a dry run, a failed build); after save(), nothing to do. */
  close(): void {
    this.stats.close();
  }

  private rules(exclude: IgnoreMatcher | undefined): Rules {
    return { ignore: this.ignore, exclude };
  }

  private entry(L: Listing, at: Resolved): ContextEntry {
    if (at.off === undefined) {
      return {
        rel: '',
        abs: this.dir,
        kind: 'dir',
        mode: this.rootStat.mode & 0o7777,
        size: 0,
        mtimeMs: this.rootStat.mtimeMs,
        tree: { rel: '', relBytes: Buffer.alloc(0), dir: 0, mode: this.rootStat.mode, mtimeMs: this.rootStat.mtimeMs },
      };
    }
    const kind = L.kind(at.off);
    const e: ContextEntry = {
      rel: at.rel,
      abs: this.abs(at.rel),
      kind,
      mode: L.mode(at.off) & 0o7777,
      size: L.size(at.off),
      mtimeMs: L.mtimeMs(at.off),
      at: at.off,
    };
    if (kind === 'symlink') e.linkname = decodeName(L.link(at.off));
    if (kind === 'dir')
      e.tree = { rel: at.rel, relBytes: encodeName(at.rel), dir: at.dir, mode: L.mode(at.off), mtimeMs: e.mtimeMs };
    return e;
  }

  /**
   * Finds a context-relative path in the listing, following symlinks (in any component) only
   * within the context: an absolute target is taken from the context root, and `..` stops there.
   */
  private resolve(L: Listing, rel: string): Resolved | undefined {
    let parts = rel === '' ? [] : rel.split('/');
    for (let hops = 0; hops < 40; hops++) {
      let dir = 0;
      let off: number | undefined;
      let restart = false;
      for (let i = 0; i < parts.length; i++) {
        if (dir === None) return undefined; // a component below a non-directory
        off = L.find(dir, encodeName(parts[i]));
        if (off === undefined) return undefined;
        if (L.kind(off) === 'symlink') {
          const target = decodeName(L.link(off));
          const here = parts.slice(0, i).join('/');
          const joined = cleanPath(target.startsWith('/') ? target : posix.join('/', here, target));
          parts = [...(joined === '.' ? [] : joined.split('/')), ...parts.slice(i + 1)];
          restart = true;
          break;
        }
        dir = L.kind(off) === 'dir' ? L.child(off) : None;
      }
      if (restart) continue;
      return { rel: parts.join('/'), off, dir: parts.length === 0 ? 0 : dir };
    }
    return undefined;
  }
}

/** Where a store keeps the stat caches of the contexts it built. */
export const statCacheDir = (storeRoot: string): string => join(storeRoot, 'builder', 'statcache');

/**
 * A context being opened (BuildContext.start): its .dockerignore read and its listing under way. One
 * build takes it (claim) and opens it; whoever started it cancels it once nothing will: a native walk
 * still running is killed then, and reaped before cancel() resolves.
 */
export class ContextStart {
  private readonly ignore: IgnoreMatcher | undefined;
  private readonly failed: Error | undefined;
  private readonly listing: Promise<Listing> | undefined;
  private readonly abort = new AbortController();
  private claimed = false;
  /** The walk bin/tsbuild.cjs started, when it was not this one's: its end. */
  private dropped: Promise<void> | undefined;
  private opened: Promise<BuildContext> | undefined;

  constructor(
    readonly dir: string,
    readonly dockerfile: string | undefined,
    readonly statCacheDir: string | undefined,
    walker?: string,
    early?: EarlyWalk,
  ) {
    // <Dockerfile>.dockerignore beside the Dockerfile wins over the context's .dockerignore.
    // Read first (one small file): the walk need not look into what it leaves out whole.
    let text = '';
    try {
      const candidates = dockerfile ? [`${dockerfile}.dockerignore`] : [];
      candidates.push(join(dir, '.dockerignore'));
      for (const c of candidates) {
        try {
          text = readControlFile(dir, c);
          break;
        } catch (e) {
          if (e instanceof BuildError) throw e;
          // absent or unreadable: the next candidate
        }
      }
      this.ignore = IgnoreMatcher.parse(text);
    } catch (e) {
      this.failed = e as Error;
      if (early) this.dropped = dropEarly(early);
      return;
    }
    const prune = prunable(this.ignore);
    walker ??= nativeWalker();
    const want = { dir, dockerfile, statCacheDir, ignore: text, walker, args: walkArgs(dir, prune) };
    let started: SpawnedWalker | undefined;
    if (early && sameWalk(early, want)) {
      trace('context walk started by the loader: taken');
      started = early.spawned;
    } else if (early) this.dropped = dropEarly(early);
    this.listing = listContext(dir, StatCache.sizeHint(statCacheDir, dir), prune, walker, this.abort.signal, started);
    this.listing.catch(() => {});
  }

  /** This start, for a build of the same context, Dockerfile and store that has not been given it yet. */
  claim(dir: string, dockerfile: string | undefined, statCacheDir: string | undefined): ContextStart | undefined {
    if (this.claimed || dir !== this.dir || dockerfile !== this.dockerfile || statCacheDir !== this.statCacheDir)
      return undefined;
    this.claimed = true;
    return this;
  }

  open(): Promise<BuildContext> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    return (this.opened ??= BuildContext.opened({
      dir: this.dir,
      ignore: this.ignore!,
      statCacheDir: this.statCacheDir,
      listing: this.listing!,
    }));
  }

  /**
   * Nothing will read the listing: a walk still running ends now, and the context opened from it lets go
   * of its stat cache's file (held open from load to save; a dry run or a failed build does not save).
   */
  async cancel(): Promise<void> {
    this.abort.abort(new Error('the build context listing was cancelled'));
    await this.listing?.catch(() => {});
    await this.dropped;
    await this.opened?.then(
      (c) => c.close(),
      () => {},
    );
  }
}

/**
 * Directories .dockerignore leaves out whole (literal patterns that nothing can re-include):
 * no COPY, bind mount or source path ever reads below them, so the walk does not look.
 */
function prunable(ignore: IgnoreMatcher): string[] {
  return ignore.patterns
    .filter((p) => !p.exclusion && !/[*?[\\]/.test(p.source) && ignore.skipsDir(p.source))
    .map((p) => p.source);
}

interface Resolved {
  rel: string;
  /** The entry in its parent's block; undefined for the context root. */
  off: number | undefined;
  /** Directory index when it is a directory, else None. */
  dir: number;
}

const inside = (dir: string, p: string) => p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/**
 * Reads a control file of the build context (the Dockerfile, a .dockerignore). A checkout may hold
 * one as a symlink to any host path, which would be printed in a parse error or used as ignore
 * patterns: a file in the context must resolve inside it, or it is refused (a BuildError naming
 * it). A file outside the context (a -f path the user chose) is read as given. Errors reading the
 * file are thrown as they are (ENOENT for a missing one).
 */
export function readControlFile(contextDir: string, file: string): string {
  const abs = resolve(file);
  const ctx = realpathSync(contextDir);
  if (!inside(resolve(contextDir), abs) && !inside(ctx, abs)) return readFileSync(abs, 'utf8');
  const real = realpathSync(abs);
  if (!inside(ctx, real)) {
    throw new BuildError(
      `${file}: a symlink that leads out of the build context (to ${real}); tsbuild does not read it`,
      2,
    );
  }
  // Read beneath the context's fd with no symlink on the way (`real` has none: one put there since fails), and
  // only a regular file: a FIFO would block the build for good (a blocked read lets no signal end it), and a device
  // is not even opened (opening one can act: a watchdog arms on open). The file is first held by an O_PATH fd, which
  // opens nothing, and opened for reading through that fd once it is known to be a regular file.
  const rel = relative(ctx, real);
  const changed = () =>
    new BuildError(`${file}: it changed while it was read (now reached through a symlink); not read`, 2);
  const root = openSync(ctx, fsc.O_RDONLY | fsc.O_DIRECTORY | O_CLOEXEC);
  let fd: number;
  try {
    let held: number;
    try {
      held = openBeneath(root, rel, O_PATH | O_CLOEXEC);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw code === 'ELOOP' || code === 'EXDEV' || code === 'ENOTDIR' ? changed() : e;
    }
    try {
      // O_PATH|O_NOFOLLOW holds a symlink put there since as the link itself: not a regular file either.
      const st = fstatSync(held);
      if (!st.isFile()) throw new BuildError(`${file}: not a regular file; tsbuild does not read it`, 2);
      fd = reopen(held, () => {
        // No /proc (only a cached build gets this far without it): by its name again, checked to be the same file.
        const again = openBeneath(root, rel, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY | O_CLOEXEC);
        const now = fstatSync(again);
        if (now.dev === st.dev && now.ino === st.ino) return again;
        closeSync(again);
        throw changed();
      });
    } finally {
      closeSync(held);
    }
  } finally {
    closeSync(root);
  }
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * The file an O_PATH fd holds, opened for reading through /proc/self/fd (the open file, not a path); `noProc`
 * where /proc is not mounted.
 */
function reopen(held: number, noProc: () => number): number {
  try {
    return openSync(self(held), fsc.O_RDONLY | fsc.O_NOCTTY | O_CLOEXEC);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || haveProcFd()) throw e;
    return noProc();
  }
}
