// The build context: a directory on the host, seen through .dockerignore, never escaped.
// Sources of COPY/ADD resolve here; symlinks inside it are kept as symlinks, and a symlink
// named directly as a source is followed only within the context.
import { promises as fsp, type BigIntStats } from 'node:fs';
import { join, posix } from 'node:path';
import { IgnoreMatcher, cleanPath, globToRegExp, hasGlob } from './ignore.js';
import { StatCache } from './statcache.js';

export interface ContextEntry {
  /** Path relative to the context root, '/'-separated ('' for the root). */
  rel: string;
  abs: string;
  stat: BigIntStats;
}

export class BuildContext {
  private constructor(
    readonly dir: string,
    readonly ignore: IgnoreMatcher,
    readonly stats: StatCache,
  ) {}

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

  /** Host path of a context-relative path; callers pass cleaned paths only. */
  abs(rel: string): string {
    return rel === '' ? this.dir : join(this.dir, rel);
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
      let st: BigIntStats;
      try {
        st = await fsp.lstat(abs, { bigint: true });
      } catch {
        return undefined;
      }
      if (!st.isSymbolicLink()) return { rel: current, abs, stat: st };
      const target = await fsp.readlink(abs);
      const joined = target.startsWith('/') ? target : posix.join(posix.dirname('/' + current), target);
      const c = cleanPath(joined);
      current = c === '.' ? '' : c;
    }
    return undefined;
  }

  /** All entries below a directory entry (not including it), sorted, .dockerignore applied. */
  async *walk(dirRel: string): AsyncGenerator<ContextEntry> {
    let names: string[];
    try {
      names = await fsp.readdir(this.abs(dirRel));
    } catch {
      return;
    }
    names.sort();
    const stats = await Promise.all(
      names.map(async (n) => {
        const rel = dirRel ? `${dirRel}/${n}` : n;
        const abs = this.abs(rel);
        try {
          return { rel, abs, stat: await fsp.lstat(abs, { bigint: true }) };
        } catch {
          return undefined;
        }
      }),
    );
    for (const e of stats) {
      if (!e) continue;
      if (e.stat.isDirectory()) {
        if (this.ignore.skipsDir(e.rel)) continue;
        if (!this.ignored(e.rel)) yield e;
        yield* this.walk(e.rel);
      } else if (!this.ignored(e.rel)) {
        yield e;
      }
    }
  }
}
