// Path rules for untrusted layer entries, and a target directory that is only ever
// written below: every parent component is lstat'ed (never followed) before use.
import { lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreError } from '../types.js';

export function hostile(entry: string, why: string): StoreError {
  return new StoreError('hostile-layer', `layer entry ${JSON.stringify(entry)}: ${why}`, entry);
}

/**
 * Normalise an entry name to a relative path ('' is the root).
 * Leading '/' and './' are stripped, as Docker does for absolute names; '.' components and
 * repeated slashes collapse. Any '..' component is refused, even one that would stay
 * inside the root: no legitimate layer writer emits them. NUL bytes are refused.
 */
export function cleanPath(name: string, entry = name): string {
  if (name.includes('\0')) throw hostile(entry, 'name contains a NUL byte');
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw hostile(entry, "'..' path component");
    parts.push(p);
  }
  return parts.join('/');
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i === -1 ? '' : rel.slice(0, i);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

/**
 * The directory being unpacked into. Single-threaded use only: between the lstat of a
 * component and its use nothing else writes here (we own the directory), so checking
 * each component once, and forgetting it when it is replaced, is not racy.
 */
export class Target {
  private readonly dirs = new Set<string>(['']);
  constructor(readonly root: string) {}

  abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  /** Make sure every component of `rel` is a real directory (creating missing ones 0755). */
  async ensureDir(rel: string, entry: string): Promise<void> {
    if (this.dirs.has(rel)) return;
    const parts = rel.split('/');
    let cur = '';
    for (const p of parts) {
      cur = cur === '' ? p : cur + '/' + p;
      if (this.dirs.has(cur)) continue;
      const st = await lstat(this.abs(cur)).catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return undefined; throw e; });
      if (!st) await mkdir(this.abs(cur), { mode: 0o755 });
      else if (st.isSymbolicLink()) throw hostile(entry, `path goes through the symlink ${JSON.stringify(cur)}`);
      else if (!st.isDirectory()) throw hostile(entry, `path goes through ${JSON.stringify(cur)}, which is not a directory`);
      this.dirs.add(cur);
    }
  }

  /** The parent of rel is safe to create entries in. */
  async parent(rel: string, entry: string): Promise<void> {
    await this.ensureDir(parentOf(rel), entry);
  }

  markDir(rel: string): void {
    this.dirs.add(rel);
  }

  /** rel was removed or replaced by a non-directory: it and everything below must be checked again. */
  forget(rel: string): void {
    this.dirs.delete(rel);
    const prefix = rel + '/';
    for (const d of this.dirs) if (d.startsWith(prefix)) this.dirs.delete(d);
  }
}
