// Hashing the content of context files: in JS (small files whole, big ones in pieces), or many at once by
// the native walker (tsbuild-walk --sha256).
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { runWalker } from './walk.js';

/** Small files are read whole and synchronously: a stream per file costs more than the file. */
/** sha256 of a file read in 1 MiB pieces: memory stays flat whatever its size. */
export function hashFileSync(path: Buffer | string): Buffer {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    for (let n; (n = readSync(fd, piece, 0, piece.length, null)) > 0;) h.update(piece.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest();
}
const piece = Buffer.allocUnsafe(1 << 20);

export function hashFile(path: Buffer | string, size = Infinity): Promise<Buffer> {
  if (size <= 1 << 20) {
    try {
      return Promise.resolve(hashFileSync(path));
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest()));
  });
}

/** sha256 of each NUL-ended path, in order, by `tsbuild-walk --sha256`; the errno where a file could not be read. */
export async function sha256Native(walker: string, paths: Buffer): Promise<(Buffer | number)[]> {
  const all = await sha256NativeRaw(walker, paths);
  const sums: (Buffer | number)[] = [];
  for (let i = 0; i < all.length / 33; i++)
    sums.push(all[i * 33] === 0 ? all.subarray(i * 33 + 1, i * 33 + 33) : all[i * 33]);
  return sums;
}

/**
 * The same answers as they come, 33 bytes a path: an errno byte (0: hashed), then the sha256. For a caller
 * that reads them one at a time (a Buffer object per file of a 200,000-file context is ~20 MB of heap).
 * `paths`: one buffer, or pieces made as the walker reads them (iterated afresh if it is run again), then with
 * `count`, the number of paths in all.
 */
export async function sha256NativeRaw(
  walker: string,
  paths: Buffer | Iterable<Buffer>,
  count?: number,
): Promise<Buffer> {
  if (count === undefined) {
    if (!Buffer.isBuffer(paths)) throw new Error('internal: paths in pieces without their count');
    count = paths.reduce((n, b) => (b === 0 ? n + 1 : n), 0);
  }
  const all = await runWalker(walker, ['--sha256'], paths);
  if (all.length !== count * 33)
    throw new Error(`tsbuild-walk --sha256 answered ${all.length} bytes for ${count} files`);
  return all;
}
