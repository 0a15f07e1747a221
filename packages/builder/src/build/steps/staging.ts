// A staging directory is the diff of a COPY/ADD/WORKDIR step, laid out from the root: the
// new files plus their parent directories, which carry the metadata they have below (or
// that they get when created) because in an overlay stack the top copy of a directory wins.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { RootView } from '../../fs/rootview.js';

export interface NewDirOwner {
  uid: number;
  gid: number;
  mode?: number;
}

export class Staging {
  /** Directories whose times must be set after their children are written. */
  private dirTimes: [string, Date][] = [];

  constructor(
    readonly dir: string,
    private readonly view: RootView,
    private readonly mtime: Date,
  ) {}

  host(path: string): string {
    return join(this.dir, path);
  }

  /**
   * Makes the canonical absolute `path` (and its parents) exist in the staging dir as
   * directories. Existing ones copy their metadata from the image; new ones get `owner`.
   * Returns whether `path` itself existed in the image as a directory.
   */
  async mkdirs(path: string, owner: NewDirOwner): Promise<boolean> {
    const parts = path.split('/').filter(Boolean);
    let existed = true;
    for (let i = 1; i <= parts.length; i++) {
      const p = '/' + parts.slice(0, i).join('/');
      const host = this.host(p);
      try {
        const st = await fsp.lstat(host);
        if (st.isDirectory()) continue;
        throw new Error(`cannot create directory ${p}: a file is in the way`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      const below = await this.view.lstatCanonical(p);
      await fsp.mkdir(host);
      if (below && below.stat.isDirectory()) {
        await fsp.chown(host, below.stat.uid, below.stat.gid);
        await fsp.chmod(host, below.stat.mode & 0o7777);
        this.dirTimes.push([host, below.stat.mtime]);
      } else {
        if (below && i < parts.length) throw new Error(`cannot copy to ${path}: ${p} is not a directory in the image`);
        existed = false;
        await fsp.chown(host, owner.uid, owner.gid);
        await fsp.chmod(host, owner.mode ?? 0o755);
        this.dirTimes.push([host, this.mtime]);
      }
    }
    return existed;
  }

  /** Sets directory times last, deepest first, since writing children changes them. */
  async finish(): Promise<void> {
    for (const [host, t] of this.dirTimes.reverse()) await fsp.utimes(host, t, t);
    this.dirTimes = [];
  }

  recordDirTime(host: string, t: Date): void {
    this.dirTimes.push([host, t]);
  }
}
