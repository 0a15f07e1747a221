// The init layer: a tiny per-run lowerdir stacked on top of the image's layers. It holds every
// path the sandbox mounts something on (etc/hosts, etc/resolv.conf, etc/hostname, dev, proc, sys and
// each extra mount's target), so that mountpoints never have to be created in the upperdir and a
// `RUN true` leaves it empty — as Docker's "-init" layer does.
import {
  lstatSync,
  mkdirSync,
  readlinkSync,
  writeFileSync,
  chmodSync,
  chownSync,
  utimesSync,
  type Stats,
} from 'node:fs';
import { join, posix } from 'node:path';
import type { Mount } from './types.js';

const MAX_SYMLINKS = 40;

type Entry = { kind: 'missing' } | { kind: 'dir' | 'file'; st: Stats } | { kind: 'symlink'; link: string };

/**
 * What the merged view of `lowerdirs` (top first) holds at `rel`, reading the layers directly. In
 * each layer the parents of `rel` are looked at first, shallowest first: a layer may hold one of
 * them as a symlink (to a host path) that a higher layer replaced by a directory, and an lstat of
 * the full path in that layer would follow it onto the host. A parent that is not a directory, or
 * a whiteout, hides `rel` in that layer and all below it, as overlayfs does.
 */
function lookup(lowerdirs: string[], rel: string): Entry {
  const parts = rel.split('/');
  for (const layer of lowerdirs) {
    let st: Stats | undefined;
    for (let i = 1; i <= parts.length; i++) {
      try {
        st = lstatSync(join(layer, ...parts.slice(0, i)));
      } catch {
        st = undefined;
        break;
      }
      // A 0/0 character device is an overlay whiteout: the path was deleted in this layer.
      if (st.isCharacterDevice() && st.rdev === 0) return { kind: 'missing' };
      if (i < parts.length && !st.isDirectory()) return { kind: 'missing' };
    }
    if (!st) continue;
    if (st.isSymbolicLink()) return { kind: 'symlink', link: readlinkSync(join(layer, rel)) };
    return { kind: st.isDirectory() ? 'dir' : 'file', st };
  }
  return { kind: 'missing' };
}

export interface Resolved {
  /** Path inside the root, with every symlink of the layers resolved and confined to the root. */
  path: string;
  entry: Entry;
  /** Parent directories that exist in the layers, with their attributes. */
  parents: { path: string; st: Stats }[];
}

/**
 * Resolves `target` as the kernel would inside the root: symlinks in the layers are followed, but
 * absolute links and ".." restart from / of the root and can never lead out of it.
 */
export function resolveInRoot(lowerdirs: string[], target: string): Resolved {
  const todo = target.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let parents: { path: string; st: Stats }[] = [];
  let links = 0;
  let entry: Entry = { kind: 'dir', st: undefined as unknown as Stats };
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '.') continue;
    if (c === '..') {
      done.pop();
      parents = parents.slice(0, done.length);
      continue;
    }
    const rel = [...done, c].join('/');
    entry = lookup(lowerdirs, rel);
    if (entry.kind === 'symlink') {
      if (++links > MAX_SYMLINKS) throw new Error(`sandbox: too many symlinks resolving mount target ${target}`);
      const link = entry.link;
      if (link.startsWith('/')) {
        done.length = 0;
        parents = [];
      }
      todo.unshift(...link.split('/').filter((x) => x !== '' && x !== '.'));
      continue;
    }
    if (todo.length > 0) {
      if (entry.kind === 'file') throw new Error(`sandbox: mount target ${target}: /${rel} is not a directory`);
      if (entry.kind === 'dir') parents.push({ path: rel, st: entry.st });
    }
    done.push(c);
  }
  return { path: '/' + done.join('/'), entry, parents };
}

/** Directories whose attributes must match the image's, applied last: adding entries bumps mtime. */
type Pending = [path: string, st: Stats][];

function copyAttrs(pending: Pending): void {
  for (const [path, st] of pending.reverse()) {
    chmodSync(path, st.mode & 0o7777);
    chownSync(path, st.uid, st.gid);
    utimesSync(path, st.atime, st.mtime);
  }
}

/**
 * Creates `rel` (a directory or an empty file) in the init layer. Parents that exist in the image
 * get the image's mode, owner and times: the topmost layer decides a merged directory's attributes
 * and is what a copy-up takes, so a bare 0755 /tmp here would change the image.
 */
function place(initDir: string, r: Resolved, kind: 'dir' | 'file', known: Set<string>, pending: Pending): void {
  const parts = r.path.split('/').filter(Boolean);
  const existing = new Map(r.parents.map((p) => [p.path, p.st]));
  for (let i = 0; i < parts.length - 1; i++) {
    const rel = parts.slice(0, i + 1).join('/');
    if (known.has(rel)) continue;
    known.add(rel);
    const p = join(initDir, rel);
    mkdirSync(p, { mode: 0o755 });
    const st = existing.get(rel);
    if (st) pending.push([p, st]);
  }
  if (r.entry.kind === 'dir' || r.entry.kind === 'file') {
    // It exists in the image; if it is also a parent of another target we still need it here.
    return;
  }
  const p = join(initDir, ...parts);
  if (kind === 'dir') mkdirSync(p, { mode: 0o755 });
  else writeFileSync(p, '', { mode: 0o644 });
  known.add(parts.join('/'));
}

/**
 * Builds the init layer in `initDir` (an empty directory) and returns the mounts with their targets
 * resolved inside the root. `targetKinds` says whether each mount needs a directory or a file.
 */
export function buildInitLayer(
  initDir: string,
  lowerdirs: string[],
  mounts: { mount: Mount; kind: 'dir' | 'file' }[],
): Mount[] {
  const known = new Set<string>();
  const pending: Pending = [];
  // The fixed mountpoints are always created in the init layer, even if the image has them, so that
  // an image's symlinked /etc/resolv.conf (or a /proc that is a file) cannot redirect our mounts.
  for (const [rel, kind] of [
    ['etc', 'dir'],
    ['dev', 'dir'],
    ['proc', 'dir'],
    ['sys', 'dir'],
  ] as const) {
    const e = lookup(lowerdirs, rel);
    const p = join(initDir, rel);
    mkdirSync(p, { mode: 0o755 });
    if (kind === 'dir' && e.kind === 'dir') pending.push([p, e.st]);
    known.add(rel);
  }
  for (const f of ['etc/hosts', 'etc/resolv.conf', 'etc/hostname']) {
    writeFileSync(join(initDir, f), '', { mode: 0o644 });
    known.add(f);
  }
  const out: Mount[] = [];
  for (const { mount, kind } of mounts) {
    if (!posix.isAbsolute(mount.target)) throw new Error(`sandbox: mount target must be absolute: ${mount.target}`);
    const r = resolveInRoot(lowerdirs, mount.target);
    if (r.path === '/') throw new Error(`sandbox: cannot mount over the root: ${mount.target}`);
    if (!known.has(r.path.slice(1))) place(initDir, r, kind, known, pending);
    out.push({ ...mount, target: r.path });
  }
  copyAttrs(pending);
  return out;
}
