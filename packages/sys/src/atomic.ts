// Write-temp-then-rename, the one way files are replaced: readers see the old content or the new, never a
// torn one. `durable` adds the fsyncs that make the new content survive a crash (file before the rename,
// directory after); without it a crash may leave the old content, which suits caches.
import { constants as fsc, promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { selfStart } from './process.js';

/**
 * A unique name part `<pid>_<start>_<random>`: the owner of a temp file or dir is in its name, so that a
 * crashed owner's leftovers can be recognised (parseOwner, pidAlive) and removed.
 */
export function ownedId(): string {
  return `${process.pid}_${selfStart()}_${randomBytes(6).toString('hex')}`;
}

/** The owner named in a temp name made with ownedId(), if any. */
export function parseOwner(name: string): { pid: number; start: string } | undefined {
  const m = /(?:^|[-.])(\d+)_(\d+)_[0-9a-f]{12}/.exec(name);
  return m ? { pid: Number(m[1]), start: m[2] } : undefined;
}

/** fsync a directory (after a rename or create in it); filesystems that refuse it (EINVAL) are let be. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
    await fh.sync();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
  } finally {
    await fh?.close();
  }
}

export interface AtomicWriteOptions {
  /** fsync the file before the rename and its directory after it (default false). */
  durable?: boolean;
  /** Mode of the new file (default 0o644). */
  mode?: number;
  /** Where the temp file goes (default: beside the target); must be on the target's filesystem. */
  tmpDir?: string;
}

/**
 * Replace `target` with `data` atomically; on failure no temp file is left and the target is untouched. `data`
 * may come in parts (an async iterable), so that a large file is written without being held whole. A part is
 * written whole before the next is asked for: its producer may reuse the part's buffer then (the stat cache's save
 * writes through one reused buffer), so this must never read ahead or queue parts.
 */
export async function writeFileAtomic(
  target: string,
  data: Buffer | string | AsyncIterable<Buffer | string>,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = join(opts.tmpDir ?? dirname(target), `.${basename(target)}.${ownedId()}.tmp`);
  try {
    const fh = await fsp.open(tmp, 'wx', opts.mode ?? 0o644);
    try {
      if (typeof data === 'string' || Buffer.isBuffer(data)) await fh.writeFile(data);
      else for await (const part of data) await writeAll(fh, typeof part === 'string' ? Buffer.from(part) : part);
      if (opts.durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, target);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  if (opts.durable) await fsyncDir(dirname(target));
}

/** Writes all of `buf` at the file's position (a write may take less than it was given). */
async function writeAll(fh: fsp.FileHandle, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length;) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
}
