// What COPY/ADD read: matched entries of the build context (those of another stage or image are
// read in view-sources.ts), each flattened into a list of files relative to the thing being
// copied. Context files are hashed by content (through the stat cache) for the step's cache key.
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { StepContext } from './context.js';
import { IgnoreMatcher, cleanPath, hasGlob } from '../../context/ignore.js';
import { BuildError, where } from '../../errors.js';
import { sha256, type Inputs, type InputStream, type KeyBuilder } from '../cachekey.js';
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
  /**
   * A context item: the context's directory, which its files are read beneath (never through a symlink that
   * replaced a directory of the context after the listing) when the layer is written from them.
   */
  root?: string;
  /** The item itself first, then everything below it (for a directory). */
  files: SourceFile[];
  /**
   * A directory of the build context: its content digest for the key, and its per-file inputs.
   * `files` and `inputs` are made on first use, which is on a cache miss only. `walk` gives the same files as
   * `files` one at a time, in the layer's order (depth first, names by bytes), none of them kept.
   */
  tree?: { digest: string; inputs: () => InputStream; walk: () => Iterable<SourceFile> };
}

export type Located = { location: { file: string; line: number; column: number } };

export function excluder(patterns: string[]): (rel: string) => boolean {
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
      items.push({ path: m.rel, isDir: false, root: context.dir, files: [contextFile(step, '', m.abs, m)] });
      continue;
    }
    const digest = await context.treeDigest(m, rules);
    trace(`${displayName(m.rel || '.')}: content digest (${context.filesRead()} files read so far)`);
    let files: SourceFile[] | undefined;
    const item: SourceItem = {
      path: m.rel,
      isDir: true,
      root: context.dir,
      get files() {
        return (files ??= context.treeFiles(m, rules).map((f) => treeFile(step, m.rel, f)));
      },
      tree: {
        digest,
        // Spelled out from the list when the step made it, else from a walk that keeps no record per file.
        inputs: () => (files ? fileInputs(m.rel, files) : treeInputs(m.rel, context.treeWalk(m, rules, true, 'path'))),
        walk: () => mapped(context.treeWalk(m, rules, false), (f) => treeFile(step, m.rel, f)),
      },
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

/**
 * fileInputs of a tree's files as a walk in path order gives them (the item first, then sorted by path, as
 * files() lists them), one at a time: a record is written as it is spelled out, never held whole.
 */
function* treeInputs(itemPath: string, walk: Iterable<TreeFile>): Generator<[string, string]> {
  for (const f of walk) yield fileInput(itemPath, f.rel, f.kind, f.mode, f.linkname, f.hash);
}

function mapped<T, U>(of: Iterable<T>, fn: (t: T) => U): Iterable<U> {
  return {
    *[Symbol.iterator]() {
      for (const t of of) yield fn(t);
    },
  };
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
