// A per-snapshot lock between processes: the store's lock (../lock.ts) on `<snapshots>/<hex>.lock`.
// The holder is recorded as pid + process start time, so the lock of a crashed process is broken
// even when its pid has since been reused by a live process; and breaking is serialised, so two
// waiters never both break it and then remove each other's fresh lock.
import { basename, dirname } from 'node:path';
import { LockManager } from '../lock.js';

export async function withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const file = basename(path);
  if (!file.endsWith('.lock')) throw new RangeError(`not a lock file name: ${path}`);
  // No timeout: the holder may be unpacking a layer of gigabytes; a dead holder's lock is broken.
  return new LockManager(dirname(path)).with(file.slice(0, -'.lock'.length), fn, { timeoutMs: Infinity });
}
