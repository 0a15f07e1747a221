import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What untrusted work could change about a tree, to take before and after it and compare: one line for dir
 * itself ('.') and one for every entry below it, depth-first in name order, with its mode (type bits
 * included), owner, mtime, and a file's content or a link's target. Links are read, never followed.
 */
export function treeFingerprint(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const abs = join(dir, rel);
    const st = lstatSync(abs);
    const what = st.isSymbolicLink()
      ? `-> ${readlinkSync(abs)}`
      : st.isFile()
        ? JSON.stringify(readFileSync(abs, 'utf8'))
        : st.isDirectory()
          ? 'dir'
          : 'other';
    out.push(`${rel} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.mtimeMs} ${what}`);
    if (st.isDirectory()) for (const name of readdirSync(abs).sort()) walk(rel === '.' ? name : `${rel}/${name}`);
  };
  walk('.');
  return out;
}
