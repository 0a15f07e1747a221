// `tsbuild logs`: a detached container's output, as its supervisor's launcher wrote it to its log.
import { createReadStream, promises as fsp } from 'node:fs';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from '@tsbuild/layerstore';
import { findDoc, isRunning, refresh, type ContainerDoc } from './state.js';

export interface LogOptions {
  /** Go on until the container is no longer running, or `signal` (the command's: Ctrl-C) aborts. */
  follow?: boolean;
  /** Only the last `tail` lines of what is there now (all when undefined); with `follow`, all that comes after. */
  tail?: number;
  signal?: AbortSignal;
}

const CHUNK = 64 * 1024;

/**
 * Where the last `n` lines of `path` start, read backwards a chunk at a time (a log may be large). A last
 * line without its newline counts, as docker counts it.
 */
async function tailStart(path: string, n: number): Promise<number> {
  let h;
  try {
    h = await fsp.open(path, 'r');
  } catch {
    return 0;
  }
  try {
    const size = (await h.stat()).size;
    if (n === 0) return size;
    const buf = Buffer.alloc(CHUNK);
    let end = size;
    let newlines = 0;
    while (end > 0) {
      const start = Math.max(0, end - CHUNK);
      const { bytesRead } = await h.read(buf, 0, end - start, start);
      for (let i = bytesRead - 1; i >= 0; i--) {
        if (buf[i] !== 0x0a) continue;
        // The newline that ends the log ends its last line: not one between lines.
        if (start + i === size - 1) continue;
        if (++newlines === n) return start + i + 1;
      }
      end = start;
    }
    return 0;
  } finally {
    await h.close();
  }
}

/** Copies the log to `out` (see LogOptions). */
export async function copyLogs(store: Store, d: ContainerDoc, out: Writable, o: LogOptions = {}): Promise<void> {
  const { follow = false, signal } = o;
  let pos = o.tail === undefined ? 0 : await tailStart(d.LogPath, o.tail);
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
