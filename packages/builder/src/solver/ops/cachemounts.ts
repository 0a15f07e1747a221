// RUN --mount=type=cache directories: kept in the store across builds, keyed by id, created with
// the mount's owner and mode. How steps that run at once share one id follows BuildKit:
//   shared  (default) every step mounts the same directory;
//   locked  a step waits until no other locked/private step holds the directory;
//   private a step never shares its directory: if the id's first directory is held, it takes the
//           next free instance of that id (made on first use, kept for later builds).
// Holding is the store's lock (locks/, holder judged by pid and start time, as every store lock).
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { RunMount } from '@tsbuild/parser';
import { StoreError, type Release, type Store } from '@tsbuild/layerstore';

type CacheMount = Extract<RunMount, { type: 'cache' }>;

/** Where instance `n` of a cache mount id lives in the store (0: the one shared and locked steps use). */
export function cacheMountPath(store: Store, id: string, n = 0): { dir: string; name: string } {
  const name = createHash('sha256').update(id).digest('hex').slice(0, 32) + (n === 0 ? '' : `-${n}`);
  return { dir: join(store.root, 'builder', 'cachemounts', name), name };
}

/** The directory of instance `n` of the mount's id, made with the mount's owner and mode if new. */
async function cacheMountDir(store: Store, m: CacheMount, n: number): Promise<{ dir: string; lock: string }> {
  const { dir, name } = cacheMountPath(store, m.id, n);
  try {
    await fsp.mkdir(dir, { recursive: false });
    await fsp.chown(dir, m.uid, m.gid);
    await fsp.chmod(dir, m.mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      await fsp.mkdir(join(dir, '..'), { recursive: true });
      return cacheMountDir(store, m, n);
    }
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return { dir, lock: `cachemount-${name}` };
}

/** The directory a step mounts for `m`, and what releases it when the step is done. */
export async function acquireCacheMount(store: Store, m: CacheMount): Promise<{ dir: string; release?: Release }> {
  if (m.sharing === 'locked') {
    const { dir, lock } = await cacheMountDir(store, m, 0);
    return { dir, release: await store.locks.acquire(lock, { timeoutMs: Infinity }) };
  }
  if (m.sharing === 'private') {
    for (let n = 0; ; n++) {
      const { dir, lock } = await cacheMountDir(store, m, n);
      try {
        return { dir, release: await store.locks.acquire(lock, { timeoutMs: 0 }) };
      } catch (e) {
        if (!(e instanceof StoreError && e.code === 'io' && /timed out/.test(e.message))) throw e;
      }
    }
  }
  return { dir: (await cacheMountDir(store, m, 0)).dir };
}
