// A staging directory is the diff of a COPY/ADD/WORKDIR step, laid out from the root: the
// new files plus their parent directories, which carry the metadata they have below (or
// that they get when created) because in an overlay stack the top copy of a directory wins.
// Every write goes through `fs` (beneath the staging root's fd, never following a symlink):
// a source may stage a link to anywhere, and a later write by path would follow it.
import { join, posix } from 'node:path';
import { entryOrderKey, type Entry } from '@tsbuild/layerstore/layer';
import type { RootView } from '@tsbuild/sandbox';
import { Beneath } from '../../rootfs/beneath-tree.js';

/** A layer's entries in order, and how many there are. */
export interface EntryList extends Iterable<Entry> {
  readonly length: number;
  /**
   * For a list that ends with a streamed tree (Staging.streamTree): the entries before it, the tree's directory
   * (below the root; itself among `placed`) and the tree's entries, so a reader can pass over the tree whole.
   */
  readonly parts?: { placed: readonly Entry[]; base: string; tree: Iterable<Entry> };
}

export interface NewDirOwner {
  uid: number;
  gid: number;
  mode?: number;
}

export class Staging {
  /** Directories whose times must be set after their children are written. */
  private dirTimes = new DirTimes();
  /** The staging tree, written only beneath its root fd. */
  readonly fs: Beneath;
  /**
   * What was placed, by path below the staging root: the layer is written from this list, so
   * the staging dir need not be walked again (an lstat and an xattr call per file).
   */
  private readonly placed = new Map<string, Entry>();
  /** Set when something landed that the list does not describe (an unpacked archive). */
  unlisted = false;
  /** Hard links to make once the files they name are there: [new name, existing name], below the root. */
  private links: [string, string][] = [];
  /** Files that hardlink entries name (below the root). */
  private readonly linked = new Set<string>();
  /** A tree whose entries are not placed one by one but walked when the layer is written (streamTree). */
  private tree: { base: string; count: number; entries: Iterable<Entry> } | undefined;
  /** Directories of the image the step writes in (mkdirs took them from the image), below the root. */
  private readonly kept = new Set<string>();
  /** Of those, the ones a name is made or replaced in (dateTouched). */
  private readonly touched = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly view: RootView,
    private readonly mtime: Date,
  ) {
    this.fs = new Beneath(dir);
  }

  host(path: string): string {
    return join(this.dir, path);
  }

  /** Closes the tree's directory fds. */
  close(): void {
    this.fs.close();
  }

  /** Whether something may already be at `path` (absolute in the image): placed, or from an archive. */
  mayHold(path: string): boolean {
    return this.unlisted || this.placed.has(rel(path));
  }

  /**
   * Makes the canonical absolute `path` (and its parents) exist in the staging dir as
   * directories. Existing ones copy their metadata from the image; new ones get `owner`.
   * Returns whether `path` itself existed in the image as a directory.
   */
  async mkdirs(path: string, owner: NewDirOwner): Promise<boolean> {
    const parts = path.split('/').filter(Boolean);
    let existed = true;
    for (let i = 1; i <= parts.length; i++) {
      const p = '/' + parts.slice(0, i).join('/');
      const st = this.fs.lstat(rel(p));
      if (st?.isDirectory()) continue;
      const what = st?.isSymbolicLink() ? 'symlink' : 'file';
      if (st) throw new Error(`cannot create directory ${p}: a ${what} is in the way`);
      const below = await this.view.lstatCanonical(p);
      if (below && below.stat.isDirectory()) {
        this.kept.add(rel(p));
        this.fs.mkdir(rel(p), below.stat.mode & 0o7777, below.stat.uid, below.stat.gid);
        this.recordDir(
          p,
          { mode: below.stat.mode & 0o7777, uid: below.stat.uid, gid: below.stat.gid },
          below.stat.mtime,
        );
      } else {
        if (below && i < parts.length) throw new Error(`cannot copy to ${path}: ${p} is not a directory in the image`);
        existed = false;
        this.touch(rel(posix.dirname(p)));
        this.fs.mkdir(rel(p), owner.mode ?? 0o755, owner.uid, owner.gid);
        this.recordDir(p, { mode: owner.mode ?? 0o755, uid: owner.uid, gid: owner.gid }, this.mtime);
      }
    }
    return existed;
  }

  private touch(dir: string): void {
    if (this.kept.has(dir)) this.touched.add(dir);
  }

  /**
   * Top-level names an archive unpacked into `dest` (absolute in the image) puts there, each with whether it
   * is a directory: they are not placed one by one (dateTouched cannot see them).
   */
  async unpackedInto(dest: string, names: [name: string, isDir: boolean][]): Promise<void> {
    const d = rel(dest);
    if (!this.kept.has(d)) return;
    for (const [name, isDir] of names) {
      if (this.touched.has(d)) return;
      if (await this.madeOrReplaced(d === '' ? name : `${d}/${name}`, isDir)) this.touched.add(d);
    }
  }

  /**
   * BuildKit's copier writes in the image's directories as any program does (and keeps no time of theirs): one
   * it makes or replaces a name in takes the time of the step (SOURCE_DATE_EPOCH's with tsbuild, so two builds
   * stay the same), one it only merges a directory into keeps its own. Call it once everything is placed,
   * before entries() and finish().
   */
  async dateTouched(): Promise<void> {
    const open = new Set([...this.kept].filter((d) => !this.touched.has(d)));
    const parent = (key: string) => key.slice(0, Math.max(0, key.lastIndexOf('/')));
    for (const [key, e] of this.placed) {
      if (open.size === 0) break;
      const d = parent(key);
      if (open.has(d) && (await this.madeOrReplaced(key, e.type === 'directory'))) {
        open.delete(d);
        this.touched.add(d);
      }
    }
    const tree = this.tree;
    if (tree && open.has(tree.base)) {
      // Only the tree's top names are looked at: the first one made or replaced settles it.
      for (const e of tree.entries) {
        if (parent(e.path) !== tree.base) continue;
        if (await this.madeOrReplaced(e.path, e.type === 'directory')) {
          this.touched.add(tree.base);
          break;
        }
      }
    }
    for (const d of this.touched) {
      const entry = this.placed.get(d);
      if (entry) entry.mtime = seconds(this.mtime);
      this.dirTimes.repeats = true;
      this.dirTimes.push(d, this.mtime);
    }
    this.touched.clear();
  }

  /** Whether placing a `dir` or not at `key` (below the root) makes or replaces a name in its directory. */
  private async madeOrReplaced(key: string, dir: boolean): Promise<boolean> {
    if (!dir) return true;
    if (this.kept.has(key)) return false;
    return !(await this.view.lstatCanonical('/' + key))?.stat.isDirectory();
  }

  /**
   * Sets directory times last, deepest first, since writing children changes them. Synchronous:
   * the thread pool is busy compressing layers, and thousands of awaited utimes queued behind
   * those jobs made a COPY of node_modules wait for its own layer.
   */
  async finish(): Promise<void> {
    // A directory two sources placed was recorded twice: the later source's time (met first here) is the layer's.
    const dated = this.dirTimes.repeats ? new Set<string>() : undefined;
    for (const [path, t] of this.dirTimes.lastFirst()) {
      if (dated?.has(path)) continue;
      dated?.add(path);
      try {
        this.fs.setDirTimes(path, t);
      } catch (e) {
        // A later source replaced the directory (its entry went with it): nothing to date.
        if (!['ENOENT', 'ENOTDIR', 'ELOOP'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
      }
    }
    this.dirTimes = new DirTimes();
  }

  /**
   * A directory placed at `path` (absolute in the image): its times are set last. `again`: a directory placed
   * before, by an earlier source of the step (its entry and its time are this one's).
   */
  recordDir(path: string, meta: { mode: number; uid: number; gid: number }, mtime: Date, again = false): void {
    if (again) this.dirTimes.repeats = true;
    this.dirTimes.push(rel(path), mtime);
    this.add({ path, type: 'directory', ...meta, mtime: seconds(mtime) });
  }

  /**
   * Records an entry (path absolute in the image); replacing a path drops what was below it, unless a directory
   * replaces a directory (two sources' directories merge: the entry keeps its place, before what is below it).
   */
  add(entry: Entry): void {
    if (this.tree) throw new Error('internal: an entry placed beside a streamed tree');
    const key = entry.path.replace(/^\/+/, '');
    const old = this.placed.get(key);
    if (old && !(old.type === 'directory' && entry.type === 'directory')) {
      for (const k of [...this.placed.keys()]) if (k.startsWith(key + '/')) this.placed.delete(k);
      // A file other entries are hard links to is going: the list can no longer say what they
      // are (the links keep the old file), the directory walk can.
      for (const l of this.linked) if (l === key || l.startsWith(key + '/')) this.unlisted = true;
    }
    this.placed.set(key, { ...entry, path: key });
  }

  /**
   * The entries of a whole tree at `path` (absolute in the image, already placed as a directory), to be walked
   * anew each time the layer's entries are read instead of placed one by one: place.ts's placeTree, for a
   * context directory of any size. Nothing else may be placed below `path` (the tree is the step's only
   * source), so that they follow every placed entry in the layer's order.
   */
  streamTree(path: string, count: number, entries: Iterable<Entry>): void {
    const base = rel(path);
    if (this.tree || [...this.placed.keys()].some((k) => k.startsWith(base === '' ? '' : `${base}/`) && k !== base))
      throw new Error(`internal: a streamed tree at /${base} beside other entries below it`);
    this.tree = { base, count, entries };
  }

  /** A directory of a streamed tree: its times are set last, as recordDir's are; it is not placed. */
  dateDir(path: string, mtime: Date): void {
    this.dirTimes.push(rel(path), mtime);
  }

  /** A hard link of a streamed tree, made by makeLinks as addLink's are; its entry is the tree's. */
  linkLater(path: string, leader: string): void {
    this.links.push([rel(path), rel(leader)]);
  }

  /**
   * Records `path` (absolute in the image) as a hard link to `leader`, placed by the same source
   * and first in the layer's order; the link itself is made by makeLinks, once the leader is there.
   */
  addLink(path: string, leader: string, meta: { mode: number; uid: number; gid: number; mtime: number }): void {
    this.add({ path, type: 'hardlink', linkname: rel(leader), ...meta });
    this.links.push([rel(path), rel(leader)]);
  }

  /**
   * What the copier (bulkcopy.ts) leaves to do, once it is done: the hard links recorded so far (what an
   * earlier source left at a name is replaced).
   */
  makeLinks(): void {
    for (const [name, existing] of this.links) {
      this.fs.remove(name);
      this.fs.linkWithin(name, existing);
      this.linked.add(existing);
    }
    this.links = [];
  }

  /**
   * The placed entries in the order a directory walk would give, or undefined if unknown. Called once, when
   * everything is placed: the record of what was placed is handed over (and forgotten here), so a large COPY
   * holds one entry per file while its layer is written, not also a map of them.
   */
  entries(): EntryList | undefined {
    if (this.unlisted) return undefined;
    // Sort keys computed once per entry: comparing split paths took ~0.4 s for 20,000 files.
    const keyed = [...this.placed.values()].map((e) => ({ e, key: entryOrderKey(e.path) }));
    this.placed.clear();
    this.unlisted = true; // nothing is listed any more: a later add() or entries() must not pass for the full list
    keyed.sort((a, b) => Buffer.compare(a.key, b.key));
    const placed = keyed.map((k) => k.e);
    const tree = this.tree;
    if (!tree) return placed;
    // The tree's directory and its parents are placed; everything below it comes after them.
    return {
      length: placed.length + tree.count,
      parts: { placed, base: tree.base, tree: tree.entries },
      *[Symbol.iterator]() {
        yield* placed;
        yield* tree.entries;
      },
    };
  }
}

/**
 * Directories and their times, in the order recorded: the times as milliseconds in one typed array, not a
 * `[path, Date]` pair per directory (39,200 of them for a 200,000-file tree, ~8 MB of heap held through the
 * whole COPY: a Date, an array and its elements each).
 */
export class DirTimes {
  /** Whether a path may be recorded more than once (the last record is its time). */
  repeats = false;
  private paths: string[] = [];
  private ms = new Float64Array(256);

  push(path: string, mtime: Date): void {
    const n = this.paths.length;
    if (n === this.ms.length) {
      const grown = new Float64Array(n * 2);
      grown.set(this.ms);
      this.ms = grown;
    }
    this.ms[n] = mtime.getTime();
    this.paths.push(path);
  }

  /** Last recorded first (children after their parents were recorded): [path, time in seconds, as utimes takes]. */
  *lastFirst(): Generator<[string, number]> {
    for (let i = this.paths.length - 1; i >= 0; i--) yield [this.paths[i], this.ms[i] / 1000];
  }
}

/** A path absolute in the image as a path below the staging root. */
export function rel(path: string): string {
  return path.replace(/^\/+/, '').replace(/\/+$/, '');
}

export function seconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}
