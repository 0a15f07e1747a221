// Describe a directory tree as comparable records (type, mode, owner, size, content hash,
// link target, device numbers, xattrs), and build trees for tests.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { readXattrs, major, minor } from '@tsbuild/sys';

export interface Record_ {
  path: string;
  type: string;
  mode: string;
  owner: string;
  size?: number;
  sha?: string;
  link?: string;
  dev?: string;
  xattrs?: Record<string, string>;
  mtime?: number;
  ino?: string;
}

function typeOf(st: Stats): string {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'other';
}

/**
 * Everything a hostile layer could change about a tree, root included: paths, types, modes,
 * owners, contents, link targets, xattrs and mtimes (directories too). Equal fingerprints
 * before and after an unpack mean the tree was not touched.
 */
export function fingerprint(root: string): Record_[] {
  const st = lstatSync(root);
  const x = readXattrs(root);
  const self: Record_ = {
    path: '.',
    type: typeOf(st),
    mode: (st.mode & 0o7777).toString(8),
    owner: `${st.uid}:${st.gid}`,
    mtime: Math.floor(st.mtimeMs / 1000),
  };
  const keys = Object.keys(x).sort();
  if (keys.length) self.xattrs = Object.fromEntries(keys.map((k) => [k, x[k].toString('hex')]));
  return [self, ...describe(root, { mtime: true, dirMtime: true })];
}

/**
 * Records of every entry below root, sorted by path. Hardlink groups show as a shared 'ino' label (first path of the
 * group).
 */
export function describe(root: string, opts: { mtime?: boolean; dirMtime?: boolean } = {}): Record_[] {
  const out: Record_[] = [];
  const inodes = new Map<number, string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(rel ? join(root, rel) : root).sort()) {
      const path = rel ? rel + '/' + name : name;
      const abs = join(root, path);
      const st = lstatSync(abs);
      const r: Record_ = { path, type: typeOf(st), mode: (st.mode & 0o7777).toString(8), owner: `${st.uid}:${st.gid}` };
      if (st.isFile()) {
        r.size = st.size;
        r.sha = createHash('sha256').update(readFileSync(abs)).digest('hex').slice(0, 16);
      }
      if (st.isSymbolicLink()) r.link = readlinkSync(abs);
      if (st.isCharacterDevice() || st.isBlockDevice()) r.dev = `${major(st.rdev)}:${minor(st.rdev)}`;
      const x = readXattrs(abs);
      const keys = Object.keys(x).sort();
      if (keys.length) r.xattrs = Object.fromEntries(keys.map((k) => [k, x[k].toString('hex')]));
      if (opts.mtime && (!st.isDirectory() || opts.dirMtime)) r.mtime = Math.floor(st.mtimeMs / 1000);
      if (st.isFile() && st.nlink > 1) {
        if (!inodes.has(st.ino)) inodes.set(st.ino, path);
        r.ino = inodes.get(st.ino)!;
      }
      out.push(r);
      if (st.isDirectory()) walk(path);
    }
  };
  walk('');
  return out;
}
