// `tsbuild logs`: a detached container's output, as its supervisor's launcher wrote it to its log.
import { createReadStream, promises as fsp } from 'node:fs';
import type { Writable } from 'node:stream';
import type { Store } from '@tsbuild/layerstore';
import { findDoc, isRunning, refresh, type ContainerDoc } from './state.js';

/** Copies the log to `out`; with `follow`, goes on until the container is no longer running. */
export async function copyLogs(store: Store, d: ContainerDoc, out: Writable, follow = false): Promise<void> {
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
  for (;;) {
    const r = await refresh(store, await findDoc(store, d.Id));
    await dump();
    if (!isRunning(r)) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  await dump();
}
