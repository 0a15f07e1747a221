// RUN --mount=type=cache directories: kept in the store across builds, keyed by id,
// created with the mount's owner and mode; `sharing=locked` serialises users of one id.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { RunMount } from '@tsbuild/parser';
import type { Store } from '@tsbuild/layerstore';

export async function cacheMountDir(store: Store, m: Extract<RunMount, { type: 'cache' }>): Promise<string> {
  const dir = join(store.root, 'builder', 'cachemounts', createHash('sha256').update(m.id).digest('hex').slice(0, 32));
  try {
    await fsp.mkdir(dir, { recursive: false });
    await fsp.chown(dir, m.uid, m.gid);
    await fsp.chmod(dir, m.mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      await fsp.mkdir(join(dir, '..'), { recursive: true });
      return cacheMountDir(store, m);
    }
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return dir;
}

/** An exclusive lock beside the cache dir, held by pid; a dead holder's lock is taken over. */
export async function lockCacheMount(dir: string): Promise<() => Promise<void>> {
  const lock = `${dir}.lock`;
  for (;;) {
    try {
      await fsp.writeFile(lock, String(process.pid), { flag: 'wx' });
      return () => fsp.rm(lock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = Number(await fsp.readFile(lock, 'utf8').catch(() => '0'));
      if (!holder || !alive(holder)) await fsp.rm(lock, { force: true });
      else await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
