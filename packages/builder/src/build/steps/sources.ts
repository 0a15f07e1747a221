// What COPY/ADD read: matched entries of the build context or of another stage/image,
// each flattened into a list of files relative to the thing being copied. Context files
// are hashed by content (through the stat cache) for the step's cache key.
import { createHash } from 'node:crypto';
import { promises as fsp, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import type { StepContext } from '../solver.js';
import type { RootView } from '../../fs/rootview.js';
import { isWhiteout } from '../../fs/rootview.js';
import { IgnoreMatcher, cleanPath, globToRegExp, hasGlob } from '../../context/ignore.js';
import { BuildError, where } from '../errors.js';
import type { FileInfo } from '../../context/walk.js';

export interface SourceFile {
  /** Path below the copied item ('' for the item itself). */
  rel: string;
  kind: 'file' | 'dir' | 'symlink';
  host: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  size: number;
  linkname?: string;
  /** Content digest (context sources only). */
  hash?: string;
}

export interface SourceItem {
  /** Path of the item relative to its root (the context or the other stage's /), for --parents and errors. */
  path: string;
  isDir: boolean;
  /** The item itself first, then everything below it (for a directory). */
  files: SourceFile[];
}

type Located = { location: { file: string; line: number; column: number } };

function excluder(patterns: string[]): (rel: string) => boolean {
  if (patterns.length === 0) return () => false;
  const m = new IgnoreMatcher(patterns);
  return (rel) => rel !== '' && m.ignores(rel);
}

/** Sources from the build context, hashed. */
export async function fromContext(ctx: StepContext, source: string, step: Located, exclude: string[] = []): Promise<SourceItem[]> {
  const { context } = ctx.opts;
  const matches = await context.match(source);
  if (matches.length === 0) throw new BuildError(`${where(step)}: "${source}" not found in the build context (${context.dir})${context.ignored(cleanPath(source)) ? ', it is excluded by .dockerignore' : ''}`);
  const skip = excluder(exclude);
  const items: SourceItem[] = [];
  for (const m of matches) {
    if (skip(posix.basename(m.rel))) continue;
    const isDir = m.info.type === 'dir';
    if (m.info.type === 'file') await context.stats.hashAll([m]);
    const files: SourceFile[] = [contextFile(ctx, '', m.abs, m.rel, m.info)];
    if (isDir) {
      const below = await context.walk(m.rel);
      await context.stats.hashAll(below);
      for (const e of below) {
        const rel = m.rel === '' ? e.rel : e.rel.slice(m.rel.length + 1);
        if (skip(rel) || e.info.type === 'other') continue;
        files.push(contextFile(ctx, rel, e.abs, e.rel, e.info));
      }
    }
    items.push({ path: m.rel, isDir, files });
  }
  if (items.length === 0) throw new BuildError(`${where(step)}: "${source}" matches only excluded files`);
  return items;
}

/** Synchronous: every file was hashed (or found in the stat cache) by hashAll before. */
function contextFile(ctx: StepContext, rel: string, abs: string, ctxRel: string, st: FileInfo): SourceFile {
  const kind = st.type === 'dir' ? 'dir' : st.type === 'symlink' ? 'symlink' : 'file';
  const f: SourceFile = { rel, kind, host: abs, mode: st.mode, uid: 0, gid: 0, mtime: new Date(Number(st.mtime) * 1000), size: st.size };
  if (kind === 'symlink') f.linkname = readlinkSync(abs);
  if (kind === 'file') {
    f.hash = ctx.opts.context.stats.cached(ctxRel, st);
    if (f.hash === undefined) throw new BuildError(`${ctxRel} changed while the build was reading the context`);
  }
  return f;
}

/** The digest of a context item for the key: names, types, modes, link targets, contents. */
export function itemDigest(item: SourceItem): string {
  const h = createHash('sha256');
  for (const f of item.files) h.update(`${f.rel}\0${f.kind}\0${f.mode.toString(8)}\0${f.linkname ?? ''}\0${f.hash ?? ''}\n`);
  return h.digest('hex');
}

/** One input per context file, so --explain can name the file that changed. */
export function addFileInputs(kb: import('../cachekey.js').KeyBuilder, items: SourceItem[]): void {
  for (const item of items) {
    for (const f of item.files) {
      const path = item.path === '' ? f.rel || '.' : f.rel ? `${item.path}/${f.rel}` : item.path;
      // Files and dirs are named by type, mode and content digest as is: hashing 20,000 of
      // these strings again would cost a cached rebuild for nothing. Link targets are free text.
      if (f.kind === 'symlink') kb.add(`file:${path}`, `symlink\0${f.mode.toString(8)}\0${f.linkname}`);
      else kb.addDigest(`file:${path}`, `${f.kind}:${f.mode.toString(8)}:${f.hash ?? ''}`);
    }
  }
}

export async function hashContextTree(ctx: StepContext, source: string, step: Located): Promise<string> {
  const items = await fromContext(ctx, source || '.', step);
  return createHash('sha256').update(items.map(itemDigest).join('\n')).digest('hex');
}

/** Sources from another stage or image, read through its root view. */
export async function fromView(view: RootView, source: string, step: Located, label: string, exclude: string[] = []): Promise<SourceItem[]> {
  const skip = excluder(exclude);
  const paths = hasGlob(source) ? await globView(view, source) : [await view.resolve(source, true)];
  const items: SourceItem[] = [];
  for (const p of paths) {
    const top = await view.lstatCanonical(p);
    if (!top) continue;
    if (skip(posix.basename(p))) continue;
    const isDir = top.stat.isDirectory();
    const files: SourceFile[] = [viewFile('', top.host, top.stat)];
    if (top.stat.isSymbolicLink()) files[0]!.linkname = await fsp.readlink(top.host);
    if (isDir) await walkView(view, p, '', files, skip);
    items.push({ path: p.replace(/^\//, ''), isDir, files });
  }
  if (items.length === 0) throw new BuildError(`${where(step)}: "${source}" not found in ${label}`);
  return items;
}

function viewFile(rel: string, host: string, st: import('node:fs').Stats): SourceFile {
  const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
  return { rel, kind, host, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime, size: st.size };
}

async function walkView(view: RootView, dir: string, rel: string, out: SourceFile[], skip: (rel: string) => boolean): Promise<void> {
  for (const name of await view.readdir(dir)) {
    const path = posix.join(dir, name);
    const r = rel ? `${rel}/${name}` : name;
    if (skip(r)) continue;
    const e = await view.lstatCanonical(path);
    if (!e || isWhiteout(e.stat)) continue;
    if (!e.stat.isFile() && !e.stat.isDirectory() && !e.stat.isSymbolicLink()) continue;
    const f = viewFile(r, e.host, e.stat);
    if (f.kind === 'symlink') f.linkname = await fsp.readlink(e.host);
    out.push(f);
    if (f.kind === 'dir') await walkView(view, path, r, out, skip);
  }
}

async function globView(view: RootView, pattern: string): Promise<string[]> {
  let current = ['/'];
  for (const part of pattern.split('/').filter(Boolean)) {
    const next: string[] = [];
    for (const base of current) {
      const dir = await view.resolve(base, true);
      if (!hasGlob(part)) {
        next.push(posix.join(dir, part));
        continue;
      }
      const re = globToRegExp(part);
      for (const n of await view.readdir(dir)) if (re.test(n)) next.push(posix.join(dir, n));
    }
    current = next;
  }
  return current;
}
