// Writing one COPY source into the staging dir: each file as a node with its owner, mode and
// times, hard links kept, and whole context trees handed to cp. Split from copy.ts, which decides
// what goes where; this is how a resolved item lands at its target.
import { posix } from 'node:path';
import { fileEntry } from '@tsbuild/layerstore/layer';
import { Staging, rel, seconds } from './staging.js';
import type { BulkCopy } from './bulkcopy.js';
import type { SourceFile, SourceItem } from './sources.js';
import { hardLinks } from './hardlinks.js';

/**
 * Writes an item's files at `target` in the staging dir. With `cpMakesDirs` (one item copied by
 * cp), the directories that hold a file are made by `cp --parents`, which gives them their
 * source's mode and times: thousands of mkdir/chown/chmod calls off the main thread, where they
 * were most of a node_modules COPY's time before cp could start. Only empty ones are made here.
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
  for (const f of item.files) {
    if (item.isDir && f.rel === '') {
      // The directory itself: its contents land in target, which mkdirs made; keep the
      // source directory's mode only when target is new, as docker does for COPY dir/.
      continue;
    }
    const dest = f.rel === '' ? target : posix.join(target, f.rel);
    const leader = leaders.get(f);
    if (leader) {
      // The leader's metadata, as it is written below (cp keeps mode and gives root's owner).
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
    if (bulk && f.kind !== 'dir') {
      // cp would open a link an earlier source (an archive, a single symlink) left at this name.
      if (staging.mayHold(dest)) staging.fs.remove(rel(dest));
      bulk.add(item.files[0].host, staging.host(target), f.rel);
      const meta = { path: dest, mode: f.mode, uid: 0, gid: 0, mtime: seconds(f.mtime) };
      staging.add(
        f.kind === 'symlink'
          ? { ...meta, type: 'symlink', linkname: f.linkname!, mode: 0o777 }
          : fileEntry(meta, f.host, f.size),
      );
      continue;
    }
    await writeFile(staging, f, dest, owner, mode);
  }
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
): Promise<void> {
  const uid = owner?.uid ?? f.uid;
  const gid = owner?.gid ?? f.gid;
  const r = rel(path);
  // A later source replaces what an earlier one put here: removed, never written through.
  if (staging.mayHold(path) || f.kind === 'dir') staging.fs.remove(r);
  switch (f.kind) {
    case 'dir':
      // Its parents may be left to cp (place()), which has not run yet: make them as mkdir -p would.
      staging.fs.mkdir(r, mode ?? f.mode, uid, gid, true);
      staging.recordDir(path, { mode: mode ?? f.mode, uid, gid }, f.mtime);
      return;
    case 'symlink':
      staging.fs.symlink(r, f.linkname!, uid, gid, f.mtime);
      staging.add({ path, type: 'symlink', linkname: f.linkname!, mode: 0o777, uid, gid, mtime: seconds(f.mtime) });
      return;
    case 'file': {
      staging.fs.writeFile(r, { copyOf: f.host }, { mode: mode ?? f.mode, uid, gid, mtime: f.mtime });
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
