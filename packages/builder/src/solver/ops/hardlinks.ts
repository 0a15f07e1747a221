// Hard links within one COPY source: which files are another name of an earlier file of it. The copy
// (copy.ts) makes them one inode again, and the content key of COPY --from (copied.ts) names them.
import { lstatSync } from 'node:fs';
import { entryOrderKey } from '@tsbuild/layerstore/layer';
import type { SourceFile } from './sources.js';

/**
 * The files of one source that are hard links to another file of it, each with that file (the
 * first of its inode in the layer's order, which the tar's hardlink entries name). As BuildKit:
 * links within a source stay links, whether or not every link of the inode is copied; files of
 * different sources are never linked. Candidates share an inode number; lstat confirms the
 * device too (a context may hold mounts), and that the file is still the one listed.
 */
export function hardLinks(files: SourceFile[]): Map<SourceFile, SourceFile> {
  const out = new Map<SourceFile, SourceFile>();
  const byIno = new Map<bigint, SourceFile[]>();
  for (const f of files) {
    if (f.kind !== 'file' || f.ino === undefined) continue;
    const same = byIno.get(f.ino);
    if (same) same.push(f);
    else byIno.set(f.ino, [f]);
  }
  for (const candidates of byIno.values()) {
    if (candidates.length < 2) continue;
    const groups = new Map<string, SourceFile[]>();
    for (const f of candidates) {
      const st = lstatSync(f.host, { bigint: true, throwIfNoEntry: false });
      if (!st?.isFile() || st.ino !== f.ino) continue;
      const key = `${st.dev}:${st.ino}`;
      const g = groups.get(key);
      if (g) g.push(f);
      else groups.set(key, [f]);
    }
    for (const g of groups.values()) {
      if (g.length < 2) continue;
      const keyed = g.map((f) => ({ f, key: entryOrderKey(f.rel) })).sort((a, b) => Buffer.compare(a.key, b.key));
      for (const { f } of keyed.slice(1)) out.set(f, keyed[0].f);
    }
  }
  return out;
}
