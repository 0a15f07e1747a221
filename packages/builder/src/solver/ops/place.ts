// Writing one COPY source into the staging dir: each file as a node with its owner, mode and
// times, hard links kept, and whole context trees handed to the copier (bulkcopy.ts). Split from copy.ts,
// which decides what goes where; this is how a resolved item lands at its target.
import { posix } from 'node:path';
import { closeSync } from 'node:fs';
import { BeneathReader, fileEntry, type Entry } from '@tsbuild/layerstore/layer';
import { Staging, rel, seconds } from './staging.js';
import { NameList, type BulkCopy } from './bulkcopy.js';
import type { SourceFile, SourceItem } from './sources.js';
import { hardLinks } from './hardlinks.js';
import { encodeName } from '../../context/listing.js';

/**
 * Writes an item's files at `target` in the staging dir. With `cpMakesDirs` (one item copied by
 * the copier), the directories that hold a file are made by the copier, which gives them their
 * source's mode: thousands of mkdir/chown/chmod calls off the main thread, where they were most of
 * a node_modules COPY's time before the copy could start. Only empty ones are made here.
 */
export async function place(
  staging: Staging,
  item: SourceItem,
  target: string,
  owner: { uid: number; gid: number } | undefined,
  mode: number | undefined,
  bulk?: BulkCopy,
  cpMakesDirs = false,
): Promise<void> {
  const leaders = hardLinks(item.files);
  const byCp = new Set<string>();
  if (bulk && cpMakesDirs) {
    for (const f of item.files) {
      if (f.kind === 'dir' || leaders.has(f)) continue;
      for (let d = posix.dirname(f.rel); d !== '.' && !byCp.has(d); d = posix.dirname(d)) byCp.add(d);
    }
  }
  // A context item's files are read beneath the context's fd, never through a symlink put there since the listing.
  const from = item.root !== undefined ? { root: item.root, reader: new BeneathReader(encodeName) } : undefined;
  try {
    await placeFiles(staging, item, target, owner, mode, leaders, byCp, bulk, from);
  } finally {
    from?.reader.close();
  }
}

async function placeFiles(
  staging: Staging,
  item: SourceItem,
  target: string,
  owner: { uid: number; gid: number } | undefined,
  mode: number | undefined,
  leaders: Map<SourceFile, SourceFile>,
  byCp: Set<string>,
  bulk: BulkCopy | undefined,
  from: ContextReader | undefined,
): Promise<void> {
  for (const f of item.files) {
    if (item.isDir && f.rel === '') {
      // The directory itself: its contents land in target, which mkdirs made; keep the
      // source directory's mode only when target is new, as docker does for COPY dir/.
      continue;
    }
    const dest = f.rel === '' ? target : posix.join(target, f.rel);
    const leader = leaders.get(f);
    if (leader) {
      // The leader's metadata, as it is written below (the copier keeps mode and gives root's owner).
      const uid = bulk ? 0 : (owner?.uid ?? leader.uid);
      const gid = bulk ? 0 : (owner?.gid ?? leader.gid);
      const meta = { mode: mode ?? leader.mode, uid, gid, mtime: seconds(leader.mtime) };
      staging.addLink(dest, posix.join(target, leader.rel), meta);
      continue;
    }
    if (f.kind === 'dir' && byCp.has(f.rel)) {
      staging.recordDir(dest, { mode: f.mode, uid: f.uid, gid: f.gid }, f.mtime);
      continue;
    }
    if (bulk && (f.kind === 'file' || f.kind === 'symlink')) {
      // What an earlier source (an archive, a single symlink) left at this name goes first.
      if (staging.mayHold(dest)) staging.fs.remove(rel(dest));
      bulk.add(item.path, rel(target), f.rel, f.kind);
      const meta = { path: dest, mode: f.mode, uid: 0, gid: 0, mtime: seconds(f.mtime) };
      staging.add(
        f.kind === 'symlink'
          ? { ...meta, type: 'symlink', linkname: f.linkname!, mode: 0o777 }
          : fileEntry(meta, f.host, f.size, item.root, f.ino),
      );
      continue;
    }
    await writeFile(staging, f, dest, owner, mode, from && { ...from, what: posix.join(item.path, f.rel) });
  }
}

/** Where a context item's files are read from: beneath its root (BeneathReader). */
interface ContextReader {
  root: string;
  reader: BeneathReader;
}

/**
 * What place() does with `bulk` and `cpMakesDirs` for a context directory that is the step's only source (no
 * --chown, no --chmod), without a record per file kept: the tree is walked from the listing for the copier's
 * names (one buffer), the directories and the inode numbers (hard links: walked again if it has any), then for
 * the layer's entries each time they are read. What a COPY holds does not grow with the files it copies beyond
 * the copier's list of names and a record per directory. The same files, links, directories and entries as
 * place().
 */
export function placeTree(staging: Staging, item: SourceItem, target: string, bulk: BulkCopy): void {
  const walk = item.tree!.walk;
  const base = rel(target);
  const below = (r: string) => (base === '' ? r : `${base}/${r}`);
  let leaders = new Map<string, SourceFile>();
  let plan = planTree(walk(), leaders, true);
  if (plan.inos) {
    leaders = treeHardLinks(walk(), plan.inos);
    if (leaders.size > 0) plan = planTree(walk(), leaders, false);
  }
  // The copier's names; the directories that hold none of them are made here, as place() makes them.
  for (let i = 0; i < plan.dirs.rels.length; i++) {
    const r = plan.dirs.rels[i];
    const dest = `/${below(r)}`;
    if (!plan.byCp.has(r)) {
      staging.fs.remove(rel(dest));
      staging.fs.mkdir(rel(dest), plan.dirs.modeAndMs[2 * i], 0, 0, true);
    }
    staging.dateDir(dest, new Date(plan.dirs.modeAndMs[2 * i + 1]));
  }
  for (const [follower, leader] of leaders) staging.linkLater(`/${below(follower)}`, `/${below(leader.rel)}`);
  if (plan.names.count > 0) bulk.addList(item.path, base, plan.names);

  // The layer's entries, as place() records them: the copier keeps mode and times and gives root's owner.
  staging.streamTree(target, plan.count, {
    *[Symbol.iterator](): Generator<Entry> {
      for (const f of walk()) {
        if (f.rel === '') continue;
        const path = below(f.rel);
        const leader = leaders.get(f.rel);
        if (leader) {
          const meta = { mode: leader.mode, uid: 0, gid: 0, mtime: seconds(leader.mtime) };
          yield { path, type: 'hardlink', linkname: below(leader.rel), ...meta };
          continue;
        }
        const meta = { path, mode: f.mode, uid: 0, gid: 0, mtime: seconds(f.mtime) };
        if (f.kind === 'dir') yield { ...meta, type: 'directory' };
        else if (f.kind === 'symlink') yield { ...meta, type: 'symlink', linkname: f.linkname!, mode: 0o777 };
        else yield fileEntry(meta, f.host, f.size, item.root, f.ino);
      }
    },
  });
}

interface TreePlan {
  /** The copier's names: every file and symlink but the hard links to another file of the tree. */
  names: NameList;
  /** Directories the copier makes (they hold a name). */
  byCp: Set<string>;
  /**
   * Directories: their paths, and mode and time (ms) in one typed array; an object and a Date each were ~5 MB of
   * live heap for the 39,200 directories of a 200,000-file context while it was staged.
   */
  dirs: { rels: string[]; modeAndMs: Float64Array };
  /** Entries below the tree's directory. */
  count: number;
  /** The files' inode numbers, when asked for, if any two are the same. */
  inos?: BigUint64Array;
}

function planTree(files: Iterable<SourceFile>, leaders: Map<string, SourceFile>, inodes: boolean): TreePlan {
  const plan: TreePlan = {
    names: new NameList(),
    byCp: new Set(),
    dirs: { rels: [], modeAndMs: new Float64Array(512) },
    count: 0,
  };
  let inos = new BigUint64Array(inodes ? 1024 : 0);
  let n = 0;
  for (const f of files) {
    if (f.rel === '') continue;
    plan.count++;
    if (f.kind === 'dir') {
      const d = plan.dirs;
      const i = d.rels.length;
      if (2 * i + 2 > d.modeAndMs.length) {
        const grown = new Float64Array(d.modeAndMs.length * 2);
        grown.set(d.modeAndMs);
        d.modeAndMs = grown;
      }
      d.rels.push(f.rel);
      d.modeAndMs[2 * i] = f.mode;
      d.modeAndMs[2 * i + 1] = f.mtime.getTime();
      continue;
    }
    if (inodes && f.kind === 'file' && f.ino !== undefined) {
      if (n === inos.length) {
        const grown = new BigUint64Array(n * 2);
        grown.set(inos);
        inos = grown;
      }
      inos[n++] = f.ino;
    }
    if (leaders.has(f.rel)) continue;
    for (let d = posix.dirname(f.rel); d !== '.' && !plan.byCp.has(d); d = posix.dirname(d)) plan.byCp.add(d);
    plan.names.add(f.rel, f.kind === 'symlink' ? 'symlink' : 'file');
  }
  const sorted = inos.subarray(0, n).sort();
  for (let i = 1; i < n; i++) if (sorted[i] === sorted[i - 1]) return { ...plan, inos: sorted };
  return plan;
}

/**
 * hardLinks() of a walked tree, by path: only the files of an inode listed twice (in `inos`, sorted) become
 * records (hardLinks() confirms them), not a map entry per file.
 */
function treeHardLinks(files: Iterable<SourceFile>, inos: BigUint64Array): Map<string, SourceFile> {
  const twice = new Set<bigint>();
  for (let i = 1; i < inos.length; i++) if (inos[i] === inos[i - 1]) twice.add(inos[i]);
  const candidates: SourceFile[] = [];
  for (const f of files) if (f.kind === 'file' && f.ino !== undefined && twice.has(f.ino)) candidates.push(f);
  const out = new Map<string, SourceFile>();
  for (const [f, leader] of hardLinks(candidates)) out.set(f.rel, leader);
  return out;
}

/**
 * Writes one file of a source into the staging dir. Synchronous on purpose: for a tree of
 * 20,000 small files, four awaited syscalls per file cost more than the copying itself.
 */
async function writeFile(
  staging: Staging,
  f: SourceFile,
  path: string,
  owner: { uid: number; gid: number } | undefined,
  mode: number | undefined,
  from?: ContextReader & { what: string },
): Promise<void> {
  const uid = owner?.uid ?? f.uid;
  const gid = owner?.gid ?? f.gid;
  const r = rel(path);
  // A directory where an earlier source put one merges with it, as docker's COPY does (this source's mode and
  // owner win); anything else a later source replaces: removed, never written through.
  if (f.kind === 'dir' && staging.fs.lstat(r)?.isDirectory()) {
    staging.fs.setDirMeta(r, mode ?? f.mode, uid, gid);
    staging.recordDir(path, { mode: mode ?? f.mode, uid, gid }, f.mtime, true);
    return;
  }
  if (staging.mayHold(path) || f.kind === 'dir') staging.fs.remove(r);
  switch (f.kind) {
    case 'dir':
      // Its parents may be left to the copier (place()), which has not run yet: make them as mkdir -p would.
      staging.fs.mkdir(r, mode ?? f.mode, uid, gid, true);
      // What a later source replaced may have been a directory recorded before.
      staging.recordDir(path, { mode: mode ?? f.mode, uid, gid }, f.mtime, staging.mayHold(path));
      return;
    case 'symlink':
      staging.fs.symlink(r, f.linkname!, uid, gid, f.mtime);
      staging.add({ path, type: 'symlink', linkname: f.linkname!, mode: 0o777, uid, gid, mtime: seconds(f.mtime) });
      return;
    case 'file': {
      const src = from ? from.reader.open(from.root, f.host, from.what, f.ino) : f.host;
      try {
        staging.fs.writeFile(r, { copyOf: src }, { mode: mode ?? f.mode, uid, gid, mtime: f.mtime });
      } finally {
        if (typeof src === 'number') closeSync(src);
      }
      const meta = { path, mode: mode ?? f.mode, uid, gid, mtime: seconds(f.mtime) };
      staging.add(fileEntry(meta, staging.host(path), f.size));
      return;
    }
    default: {
      // A device node or FIFO below a copied directory of a stage: made as a node, never opened.
      const node = f.kind === 'fifo' ? { type: f.kind } : { type: f.kind, ...f.rdev! };
      staging.fs.mknod(r, node, { mode: mode ?? f.mode, uid, gid, mtime: f.mtime });
      const devs = f.kind === 'fifo' ? {} : { devmajor: f.rdev!.major, devminor: f.rdev!.minor };
      staging.add({ path, type: f.kind, mode: mode ?? f.mode, uid, gid, mtime: seconds(f.mtime), ...devs });
    }
  }
}
