// COPY --from sources: the files of another stage or image, read through its root view (layers
// merged, whiteouts honoured, globs matched on the merged tree). Split from sources.ts, which reads
// the build context: here nothing is hashed (the stage's or image's key stands for it) and device
// nodes and FIFOs below a directory are listed as nodes, never opened.
import { promises as fsp } from 'node:fs';
import { posix } from 'node:path';
import type { RootView } from '@tsbuild/sandbox';
import { isWhiteout } from '@tsbuild/sandbox';
import { globToRegExp, hasGlob } from '../../context/ignore.js';
import { BuildError, where } from '../../errors.js';
import { displayName } from '../../context/listing.js';
import { excluder, type Located, type SourceFile, type SourceItem } from './sources.js';

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
