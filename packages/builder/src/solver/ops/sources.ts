// What COPY/ADD read: matched entries of the build context or of another stage/image,
// each flattened into a list of files relative to the thing being copied. Context files
// are hashed by content (through the stat cache) for the step's cache key.
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { posix } from 'node:path';
import type { StepContext } from './context.js';
import type { RootView } from '@tsbuild/sandbox';
import { isWhiteout } from '@tsbuild/sandbox';
import { IgnoreMatcher, cleanPath, globToRegExp, hasGlob } from '../../context/ignore.js';
import { BuildError, where } from '../../errors.js';
import { sha256, type Inputs, type KeyBuilder } from '../cachekey.js';
import type { ContextEntry } from '../../context/context.js';
import { displayName, isEscaped } from '../../context/listing.js';
import type { TreeFile } from '../../context/tree.js';
import { trace } from '../../trace.js';

export interface SourceFile {
  /** Path below the copied item ('' for the item itself). */
  rel: string;
  /** Device nodes and FIFOs only below a copied directory of a stage (fromView): never opened. */
  kind: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';
  host: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  size: number;
  linkname?: string;
  /** A device node's numbers. */
  rdev?: { major: number; minor: number };
  /** Content digest (context sources only). */
  hash?: string;
  /**
   * For a file that may have other links in the same item: its inode number in the source. Files
   * that share one are checked (lstat: device and inode) and copied as one inode (copy.ts).
   */
  ino?: bigint;
}

export interface SourceItem {
  /** Path of the item relative to its root (the context or the other stage's /), for --parents and errors. */
  path: string;
  isDir: boolean;
  /** The item itself first, then everything below it (for a directory). */
  files: SourceFile[];
  /**
   * A directory of the build context: its content digest for the key, and its per-file inputs.
   * `files` and `inputs` are made on first use, which is on a cache miss only.
   */
  tree?: { digest: string; inputs: () => Inputs };
}

type Located = { location: { file: string; line: number; column: number } };

function excluder(patterns: string[]): (rel: string) => boolean {
  if (patterns.length === 0) return () => false;
  const m = new IgnoreMatcher(patterns);
  return (rel) => rel !== '' && m.ignores(rel);
}

/**
 * Sources from the build context, hashed. `emptyWildcard`: a wildcard that matches nothing gives no
 * items instead of an error (COPY and ADD, as BuildKit's AllowEmptyWildcard).
 */
export async function fromContext(
  ctx: StepContext,
  source: string,
  step: Located,
  exclude: string[] = [],
  emptyWildcard = false,
): Promise<SourceItem[]> {
  const { context } = ctx.opts;
  const matches = await context.match(source);
  if (matches.length === 0 && emptyWildcard && hasGlob(source)) return [];
  if (matches.length === 0)
    throw new BuildError(
      `${where(step)}: "${source}" not found in the build context ` +
        `(${context.dir})${context.ignored(cleanPath(source)) ? ', it is excluded by .dockerignore' : ''}`,
    );
  const skip = excluder(exclude);
  const rules = exclude.length > 0 ? new IgnoreMatcher(exclude) : undefined;
  const items: SourceItem[] = [];
  for (const m of matches) {
    if (skip(posix.basename(m.rel))) continue;
    if (m.kind === 'other')
      throw new BuildError(
        `${where(step)}: ${displayName(m.rel)} in the build context is not a regular file, directory or symlink`,
      );
    if (m.kind !== 'dir') {
      items.push({ path: m.rel, isDir: false, files: [contextFile(step, '', m.abs, m)] });
      continue;
    }
    const digest = await context.treeDigest(m, rules);
    trace(`${displayName(m.rel || '.')}: content digest (${context.filesRead()} files read so far)`);
    let list: TreeFile[] | undefined;
    let files: SourceFile[] | undefined;
    const tree = () => (list ??= context.treeFiles(m, rules));
    const item: SourceItem = {
      path: m.rel,
      isDir: true,
      get files() {
        if (!files) {
          files = tree().map((f) => treeFile(step, m.rel, f));
          // One list per tree is held while the step runs, not two: the inputs are read from this one.
          list = undefined;
        }
        return files;
      },
      tree: { digest, inputs: () => fileInputs(m.rel, files ?? tree()) },
    };
    items.push(item);
  }
  if (items.length === 0) throw new BuildError(`${where(step)}: "${source}" matches only excluded files`);
  return items;
}

function contextFile(step: Located, rel: string, abs: string, e: ContextEntry): SourceFile {
  const kind = e.kind === 'symlink' ? 'symlink' : 'file';
  const f: SourceFile = {
    rel,
    kind,
    host: abs,
    mode: e.mode,
    uid: 0,
    gid: 0,
    mtime: new Date(e.mtimeMs),
    size: e.size,
    hash: e.hash,
  };
  if (kind === 'symlink') f.linkname = e.linkname;
  if (isEscaped(e.rel) || (f.linkname !== undefined && isEscaped(f.linkname))) throw notUtf8(step, e.rel);
  return f;
}

function treeFile(step: Located, itemPath: string, t: TreeFile): SourceFile {
  if (t.host === undefined || (t.linkname !== undefined && isEscaped(t.linkname)))
    throw notUtf8(step, itemPath && t.rel ? `${itemPath}/${t.rel}` : itemPath || t.rel);
  return {
    rel: t.rel,
    kind: t.kind,
    host: t.host,
    mode: t.mode,
    uid: 0,
    gid: 0,
    mtime: new Date(t.mtimeMs),
    size: t.size,
    linkname: t.linkname,
    hash: t.hash,
    ino: t.ino,
  };
}

// The key and the listing take any bytes; the copy (staging, tar headers) speaks strings.
function notUtf8(step: Located, rel: string): BuildError {
  return new BuildError(
    `${where(step)}: cannot copy "${displayName(rel)}" from the build context: its name (or its link target) is ` +
      `not valid UTF-8, which tsbuild cannot copy yet; exclude it in .dockerignore or with --exclude`,
  );
}

/** The digest of a context item for a RUN --mount key: names, types, modes, link targets, contents. */
export function itemDigest(item: SourceItem): string {
  if (item.tree) return item.tree.digest;
  const h = createHash('sha256');
  for (const f of item.files)
    h.update(`${f.rel}\0${f.kind}\0${f.mode.toString(8)}\0${f.linkname ?? ''}\0${f.hash ?? ''}\n`);
  return h.digest('hex');
}

/** One input per file, so --explain can name the file that changed. */
function fileInputs(
  itemPath: string,
  files: readonly Pick<SourceFile, 'rel' | 'kind' | 'mode' | 'linkname' | 'hash'>[],
): Inputs {
  const out: Inputs = [];
  for (const f of files) out.push(fileInput(itemPath, f.rel, f.kind, f.mode, f.linkname, f.hash));
  return out;
}

function fileInput(
  itemPath: string,
  rel: string,
  kind: SourceFile['kind'],
  mode: number,
  linkname: string | undefined,
  hash: string | undefined,
): [string, string] {
  const path = itemPath === '' ? rel || '.' : rel ? `${itemPath}/${rel}` : itemPath;
  // Link targets are free text, hashed; files and dirs are named by type, mode and content digest as is.
  if (kind === 'symlink') return [`file:${path}`, sha256(`symlink\0${mode.toString(8)}\0${linkname}`)];
  return [`file:${path}`, `${kind}:${mode.toString(8)}:${hash ?? ''}`];
}

/**
 * The inputs of context items: a directory as one digest (spelled out per file on a miss),
 * a single file or symlink as itself.
 */
export function addFileInputs(kb: KeyBuilder, items: SourceItem[]): void {
  for (const item of items) {
    if (item.tree) {
      kb.addGroup(`tree:${item.path || '.'}`, item.tree.digest, item.tree.inputs);
      continue;
    }
    for (const f of item.files) {
      const [name, digest] = fileInput(item.path, f.rel, f.kind, f.mode, f.linkname, f.hash);
      kb.addDigest(name, digest);
    }
  }
}

export async function hashContextTree(ctx: StepContext, source: string, step: Located): Promise<string> {
  const items = await fromContext(ctx, source || '.', step);
  return createHash('sha256').update(items.map(itemDigest).join('\n')).digest('hex');
}

/** Sources from another stage or image, read through its root view (`emptyWildcard`: as fromContext). */
export async function fromView(
  view: RootView,
  source: string,
  step: Located,
  label: string,
  exclude: string[] = [],
  emptyWildcard = false,
): Promise<SourceItem[]> {
  const skip = excluder(exclude);
  const paths = hasGlob(source) ? await globView(view, source) : [await view.resolve(source, true)];
  const items: SourceItem[] = [];
  for (const p of paths) {
    const top = await view.lstatCanonical(p);
    if (!top) continue;
    if (skip(posix.basename(p))) continue;
    // A device node, FIFO or socket is never opened: the snapshot is on a host filesystem that
    // honours devices (a stage's `b 8 0` would read the host's disk), and a FIFO blocks for good.
    if (!top.stat.isFile() && !top.stat.isDirectory() && !top.stat.isSymbolicLink()) {
      throw new BuildError(`${where(step)}: ${displayName(p)} in ${label} is not a regular file, directory or symlink`);
    }
    const isDir = top.stat.isDirectory();
    const files: SourceFile[] = [viewFile('', top.host, top.stat)];
    if (top.stat.isSymbolicLink()) files[0].linkname = await fsp.readlink(top.host);
    if (isDir) await walkView(view, p, '', files, skip);
    items.push({ path: p.replace(/^\//, ''), isDir, files });
  }
  if (items.length === 0 && !(emptyWildcard && hasGlob(source) && paths.length === 0)) {
    throw new BuildError(`${where(step)}: "${source}" not found in ${label}`);
  }
  return items;
}

function viewFile(rel: string, host: string, st: import('node:fs').Stats): SourceFile {
  const kind = st.isDirectory()
    ? 'dir'
    : st.isSymbolicLink()
      ? 'symlink'
      : st.isCharacterDevice()
        ? 'char'
        : st.isBlockDevice()
          ? 'block'
          : st.isFIFO()
            ? 'fifo'
            : 'file';
  const f: SourceFile = {
    rel,
    kind,
    host,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtime: st.mtime,
    size: st.size,
  };
  // A snapshot holds only the image's own hard links (a layer's, made when it was unpacked or written).
  if (kind === 'file' && st.nlink > 1) f.ino = BigInt(st.ino);
  if (kind === 'char' || kind === 'block') f.rdev = devNumbers(st.rdev);
  return f;
}

/** glibc's gnu_dev_major/minor of a dev_t. */
function devNumbers(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

async function walkView(
  view: RootView,
  dir: string,
  rel: string,
  out: SourceFile[],
  skip: (rel: string) => boolean,
): Promise<void> {
  for (const name of await view.readdir(dir)) {
    const path = posix.join(dir, name);
    const r = rel ? `${rel}/${name}` : name;
    if (skip(r)) continue;
    const e = await view.lstatCanonical(path);
    if (!e || isWhiteout(e.stat)) continue;
    // Device nodes and FIFOs are copied as nodes (copy.ts makes them with mknod, never opens them),
    // as current BuildKit does; a socket cannot be in a layer, and BuildKit leaves it out too.
    if (e.stat.isSocket()) continue;
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
