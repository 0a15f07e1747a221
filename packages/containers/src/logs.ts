// `tsbuild logs`: a detached container's output, as its supervisor's launcher wrote it to its log.
import { createReadStream, promises as fsp } from 'node:fs';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from '@tsbuild/layerstore';
import { findDoc, isRunning, refresh, type ContainerDoc } from './state.js';

/**
 * Copies the log to `out`; with `follow`, goes on until the container is no longer running, or `signal` (the
 * command's: Ctrl-C) aborts.
 */
export async function copyLogs(
  store: Store,
  d: ContainerDoc,
  out: Writable,
  follow = false,
  signal?: AbortSignal,
): Promise<void> {
  let pos = 0;
  const dump = async () => {
    let size = 0;
    try {
      size = (await fsp.stat(d.LogPath)).size;
    } catch {
      return;
    }
    if (size <= pos) return;
    await new Promise<void>((res, rej) => {
      const s = createReadStream(d.LogPath, { start: pos, end: size - 1 });
      s.on('error', rej);
      s.on('end', () => res());
      s.pipe(out, { end: false });
    });
    pos = size;
  };
  await dump();
  if (!follow) return;
  while (!signal?.aborted) {
    const r = await refresh(store, await findDoc(store, d.Id));
    await dump();
    if (!isRunning(r)) break;
    await sleep(200, undefined, { signal }).catch(() => {});
  }
  if (signal?.aborted) return;
  await dump();
}
