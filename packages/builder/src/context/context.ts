// The build context: a directory on the host, seen through .dockerignore, never escaped.
// Sources of COPY/ADD resolve here; symlinks inside it are kept as symlinks, and a symlink
// named directly as a source is followed only within the context.
import { promises as fsp } from 'node:fs';
import { join, posix } from 'node:path';
import { IgnoreMatcher, cleanPath, globToRegExp, hasGlob } from './ignore.js';
import { StatCache } from './statcache.js';
import { infoFromStats, walkTree, type FileInfo } from './walk.js';

export interface ContextEntry {
  /** Path relative to the context root, '/'-separated ('' for the root). */
  rel: string;
  abs: string;
  info: FileInfo;
}

export class BuildContext {
  /** The whole context, listed once, started as soon as the context is opened. */
  private listing: Promise<FileInfo[]> | undefined;

  private constructor(
    readonly dir: string,
    readonly ignore: IgnoreMatcher,
    readonly stats: StatCache,
  ) {}

  /** Starts listing the context in the background, to overlap with parsing and base resolution. */
  prefetch(): void {
    this.listing ??= walkTree(this.dir).then((all) => all.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0)));
    this.listing.catch(() => {});
  }

  static async open(dir: string, dockerfile: string | undefined, statCacheDir: string | undefined): Promise<BuildContext> {
    // <Dockerfile>.dockerignore beside the Dockerfile wins over the context's .dockerignore.
    let text = '';
    const candidates = dockerfile ? [`${dockerfile}.dockerignore`] : [];
    candidates.push(join(dir, '.dockerignore'));
    for (const c of candidates) {
      try {
        text = await fsp.readFile(c, 'utf8');
        break;
      } catch {
        // next
      }
    }
    return new BuildContext(dir, IgnoreMatcher.parse(text), await StatCache.load(statCacheDir, dir));
  }

  /** Host path of a context-relative path; callers pass cleaned paths only (so no join()). */
  abs(rel: string): string {
    return rel === '' ? this.dir : `${this.dir}/${rel}`;
  }

  /**
   * Resolves a COPY source (possibly with wildcards) to the matching top-level entries.
   * Paths outside the context are clamped to it, as BuildKit does.
   */
  async match(source: string): Promise<ContextEntry[]> {
    const cleaned = cleanPath(source);
    const rel = cleaned === '.' ? '' : cleaned;
    if (!hasGlob(rel)) {
      const entry = await this.lookup(rel);
      return entry && !this.ignored(entry.rel) ? [entry] : [];
    }
    // Expand component by component; each component may be a glob.
    let current: string[] = [''];
    for (const part of rel.split('/')) {
      const next: string[] = [];
      for (const base of current) {
        if (!hasGlob(part)) {
          next.push(base ? `${base}/${part}` : part);
          continue;
        }
        const re = globToRegExp(part);
        let names: string[] = [];
        try {
          names = await fsp.readdir(this.abs(base));
        } catch {
          continue;
        }
        for (const n of names.sort()) if (re.test(n)) next.push(base ? `${base}/${n}` : n);
      }
      current = next;
    }
    const out: ContextEntry[] = [];
    for (const r of current) {
      if (this.ignored(r)) continue;
      const e = await this.lookup(r);
      if (e) out.push(e);
    }
    return out;
  }

  ignored(rel: string): boolean {
    return rel !== '' && this.ignore.ignores(rel);
  }

  /** lstat within the context, following a symlink in the final component only inside the context. */
  private async lookup(rel: string): Promise<ContextEntry | undefined> {
    let current = rel;
    for (let hops = 0; hops < 40; hops++) {
      const abs = this.abs(current);
      let info: FileInfo;
      try {
        info = infoFromStats(current, await fsp.lstat(abs, { bigint: true }));
      } catch {
        return undefined;
      }
      if (info.type !== 'symlink') return { rel: current, abs, info };
      const target = await fsp.readlink(abs);
      const joined = target.startsWith('/') ? target : posix.join(posix.dirname('/' + current), target);
      const c = cleanPath(joined);
      current = c === '.' ? '' : c;
    }
    return undefined;
  }

  /**
   * All entries below a directory (not including it), parents before children, in a fixed
   * order, with .dockerignore applied: an excluded directory is skipped whole unless a `!`
   * pattern could bring something below it back.
   */
  async walk(dirRel: string): Promise<ContextEntry[]> {
    this.prefetch();
    const all = await this.listing!;
    const prefix = dirRel ? `${dirRel}/` : '';
    // Sorted by path, so everything below dirRel is one run of the listing.
    let lo = 0;
    let hi = all.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (all[mid]!.rel < prefix) lo = mid + 1;
      else hi = mid;
    }
    const found: FileInfo[] = [];
    for (let i = lo; i < all.length && all[i]!.rel.startsWith(prefix); i++) found.push(all[i]!);
    const skipped = new Set<string>();
    const out: ContextEntry[] = [];
    for (const info of found) {
      const slash = info.rel.lastIndexOf('/');
      const parent = slash < 0 ? '' : info.rel.slice(0, slash);
      if (skipped.has(parent)) {
        if (info.type === 'dir') skipped.add(info.rel);
        continue;
      }
      if (info.type === 'dir' && this.ignore.skipsDir(info.rel)) {
        skipped.add(info.rel);
        continue;
      }
      if (this.ignored(info.rel)) continue;
      out.push({ rel: info.rel, abs: this.abs(info.rel), info });
    }
    return out;
  }
}
