// The key of a COPY --from=<stage>: the content it copies, not the stage's key. As BuildKit (its
// content hash of the copied paths), a stage that re-runs and makes byte-identical files leaves
// the copy, and every step after it, cached: the "dependency recipe" pattern (cargo-chef,
// `COPY --from=deps /app/node_modules`). COPY --from=<image> needs none of this: the image's
// manifest digest already pins every byte it can copy.
//
// What the copy carries enters the key, per file: its path, type, mode (setuid/setgid/sticky
// too), uid/gid, symlink target, device numbers, content digest, and which earlier file of its
// source it is a hard link to (hardlinks.ts; copy.ts keeps those groups). Not its mtime: BuildKit's hash leaves
// it out, and a RUN that re-makes the same files gives them new times, which would defeat the
// pattern; so a hit carries the times of the build that made the record, as in BuildKit. --chown/--chmod are
// in the instruction's input; the source's owner and mode stay in too (an extra miss at worst).
//
// Cost: the files are read once to hash them (many: by tsbuild-walk, on every core). When every
// layer of the source stage is already in the store (the stage was a cache hit, or is an image),
// its layers' ChainID names its filesystem exactly, so the digest is remembered in the cache index
// under that ChainID and the sources, and a cached rebuild reads no file. A stage that just ran
// has new diffs (no diffID yet: the blobs are still being written), and those are read: they are
// what changed. On a miss the per-file inputs (for --explain) reuse the hashes made here, and are
// hashed only if the digest was remembered.
import { createHash } from 'node:crypto';
import type { CopyStep } from '@tsbuild/parser';
import { chainID, type Digest, type Layer } from '@tsbuild/layerstore';
import { sha256, type Inputs } from '../cachekey.js';
import type { StepContext } from './context.js';
import { isPending, type StageLayer } from '../../rootfs/layers.js';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { SourceFile, SourceItem } from './sources.js';
import { hardLinks } from './hardlinks.js';
import { trace } from '../../trace.js';
import { sha256Native } from '../../context/filehash.js';
import { nativeWalker, WalkerUnavailable } from '../../context/walk.js';

export interface CopiedContent {
  digest: string;
  /** One input per copied entry (`copied:/path`), for --explain; hashes files only if not done yet. */
  inputs: () => Inputs;
}

/** The cache id the digest of what a COPY --from copies is remembered under: its source's ChainID (see above). */
function memoOf(step: CopyStep, stored: Layer[]): Digest {
  const what = JSON.stringify([step.sources, step.exclude]);
  return `sha256:${sha256(`copied-content\0${chainID(stored.map((l) => l.diffID))}\0${what}`)}`;
}

/**
 * The copied content's digest if remembered: only when every layer of the source is in the store. Even
 * under --no-cache: the ChainID pins every byte the digest was made from. Needs no file of the source, not
 * even its listing: a cached rebuild asks only this (copy.ts lists the sources only if the step runs).
 */
export async function rememberedCopied(
  ctx: StepContext,
  step: CopyStep,
  layers: readonly StageLayer[],
): Promise<string | undefined> {
  if (layers.length === 0 || !layers.every((l) => !isPending(l))) return undefined;
  const known = (await ctx.opts.store.cache.get(memoOf(step, layers as Layer[])))?.value as
    { digest?: unknown } | undefined;
  if (typeof known?.digest !== 'string') return undefined;
  trace(`${ctx.state.label}: copied content remembered`);
  return known.digest;
}

/** One input per copied entry (`copied:/path`), for --explain; files not in `hashes` are hashed here. */
export function copiedInputs(items: SourceItem[], hashes = new Map<SourceFile, string>()): () => Inputs {
  const links = items.map((i) => hardLinks(i.files));
  return () =>
    items.flatMap((item, i) =>
      item.files.map((f) =>
        entryInput(item, f, links[i].get(f), (g) => hashes.get(g) ?? (g.kind === 'file' ? hashSync(g.host) : '')),
      ),
    );
}

/** The copied content's digest, the files hashed (the caller asked rememberedCopied() first), and remembered. */
export async function copiedContent(
  ctx: StepContext,
  step: CopyStep,
  layers: readonly StageLayer[],
  items: SourceItem[],
): Promise<CopiedContent> {
  const hashes = new Map<SourceFile, string>();
  const links = items.map((i) => hardLinks(i.files));
  const digestOf = (list: Inputs) => sha256(list.map(([n, d]) => `${n}\0${d}\n`).join(''));
  // Hard links are named by their leader, not hashed again.
  const todo = items.flatMap((item, i) => item.files.filter((f) => f.kind === 'file' && !links[i].has(f)));
  const by = (await hashAll(todo, hashes)) ? ', by tsbuild-walk' : '';
  trace(`${ctx.state.label}: copied content hashed (${hashes.size} files${by})`);
  const inputs = copiedInputs(items, hashes);
  const digest = digestOf(inputs());
  const remember = (id: Digest) => ctx.opts.store.cache.put(id, { value: { digest }, blobs: [] });
  const settled = layers.every((l) => !isPending(l));
  if (settled && layers.length > 0) await remember(memoOf(step, layers as Layer[]));
  else if (layers.length > 0) {
    // The stage just ran: its new layers get their diffIDs once written, in the background; the
    // next build, with the stage cached, finds the digest then. Only a memo: a failure costs a re-hash.
    const written = Promise.all(layers.map((l) => (isPending(l) ? l.layer : Promise.resolve(l))));
    ctx.stages.layers.track(written.then((ls) => remember(memoOf(step, ls))).catch(() => {}));
  }
  return { digest, inputs };
}

function entryInput(
  item: SourceItem,
  f: SourceFile,
  leader: SourceFile | undefined,
  hash: (f: SourceFile) => string,
): [string, string] {
  const path = '/' + [item.path, f.rel].filter(Boolean).join('/');
  const meta = `${f.kind}\0${f.mode.toString(8)}\0${f.uid}:${f.gid}`;
  // A hard link is named by its leader (the file the layer's link entry points at), not its content.
  const what = leader
    ? `link\0${leader.rel}`
    : f.kind === 'symlink'
      ? `->\0${f.linkname}`
      : f.rdev
        ? `dev\0${f.rdev.major},${f.rdev.minor}`
        : hash(f);
  // An item that is a single file lands at a name of its own, a directory's content lands in dest.
  const top = f.rel === '' ? `\0item:${item.isDir ? 'dir' : 'file'}` : '';
  return [`copied:${path}`, createHash('sha256').update(`${meta}\0${what}${top}`).digest('hex')];
}

/**
 * Hashes files into `out`: many at once by tsbuild-walk --sha256 on every core (as the context's
 * files are: tree.ts), a few, or all without the walker, here. True when the walker did.
 */
async function hashAll(files: SourceFile[], out: Map<SourceFile, string>): Promise<boolean> {
  const walker = nativeWalker();
  const paths = () => Buffer.concat(files.map((f) => Buffer.from(`${f.host}\0`)));
  const sums =
    files.length >= 64 && walker
      ? await sha256Native(walker, paths()).catch((e) => {
          if (e instanceof WalkerUnavailable) return undefined;
          throw e;
        })
      : undefined;
  files.forEach((f, i) => {
    const s = sums?.[i];
    if (typeof s === 'number') throw new Error(`${f.host}: cannot be read (tsbuild-walk error ${s})`);
    if (s) out.set(f, s.toString('hex'));
  });
  for (const f of files) if (!out.has(f)) out.set(f, f.size <= Piece ? hashSync(f.host) : await hashBig(f.host));
  return sums !== undefined;
}

// The files are read as copy.ts copies them (Beneath's second fence): never through a symlink, never
// blocking on a FIFO, and only if what was opened is a regular file. A snapshot does not change once
// its stage is done, so this only guards against a path that is not what it was listed as.
const Flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const Piece = 1 << 20;
const piece = Buffer.allocUnsafe(Piece);

function notFile(path: string): Error {
  return new Error(`${path}: not a regular file any more`);
}

/** Small files are read whole and synchronously: a stream per file costs more than the file. */
function hashSync(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, Flags);
  try {
    if (!fstatSync(fd).isFile()) throw notFile(path);
    for (let n; (n = readSync(fd, piece, 0, Piece, null)) > 0;) h.update(piece.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

async function hashBig(path: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(path, Flags);
  try {
    if (!(await fh.stat()).isFile()) throw notFile(path);
    const buf = Buffer.allocUnsafe(Piece);
    for (let n; (n = (await fh.read(buf, 0, Piece, null)).bytesRead) > 0;) h.update(buf.subarray(0, n));
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}
