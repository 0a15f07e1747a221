// Copies a directory of a root filesystem, as a RootView shows it (whiteouts applied), into a
// plain directory: how a volume is seeded from what its image holds at the mount point.
import { promises as fsp, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import type { RootView } from './rootview.js';

/** Copies a directory of a layer stack, whiteouts applied, into a plain directory. */
export async function flattenInto(view: RootView, from: string, dest: string): Promise<void> {
  const top = await view.stat(from);
  if (!top) throw new Error(`${from} not found`);
  const copy = async (path: string, host: string, st: Stats, out: string) => {
    if (st.isDirectory()) {
      await fsp.mkdir(out, { recursive: true });
      for (const name of await view.readdir(path)) {
        const e = await view.lstatCanonical(posix.join(path, name));
        if (e) await copy(e.path, e.host, e.stat, join(out, name));
      }
      await fsp.chmod(out, st.mode & 0o7777);
      await fsp.chown(out, st.uid, st.gid);
    } else if (st.isSymbolicLink()) {
      await fsp.symlink(await fsp.readlink(host), out);
      await fsp.lchown(out, st.uid, st.gid);
    } else if (st.isFile()) {
      await fsp.copyFile(host, out);
      await fsp.chmod(out, st.mode & 0o7777);
      await fsp.chown(out, st.uid, st.gid);
    }
  };
  await copy(top.path, top.host, top.stat, dest);
}
