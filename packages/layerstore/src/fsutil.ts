// Small filesystem helpers shared by the store: digests, atomic writes, fsync of directories.
import { lstatSync, promises as fsp, constants as fsc, readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { StoreError, type Digest } from './types.js';

const digestRe = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && digestRe.test(s);
}

/** Only `sha256:<64 lowercase hex>` is accepted: a digest string is used to build file paths. */
export function checkDigest(s: unknown, what = 'digest'): Digest {
  if (!isDigest(s))
    throw new StoreError('invalid', `${what} ${JSON.stringify(s)} is not sha256:<64 hex digits>`, String(s));
  return s;
}

export function hexOf(d: Digest): string {
  return checkDigest(d).slice(7);
}

export function sha256(bytes: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

// SmallFileIO: the store's small metadata reads (cache records, index.json, tag lookups, blob
// stats and JSON blobs) use synchronous calls inside their async functions. Each fs.promises call
// is a round trip through libuv's thread pool, and fs.promises.readFile is four (open, fstat,
// read, close): 0.3 ms per small file here against 0.03 ms for readFileSync, and a cached rebuild
// makes dozens of them one after another. The files are a few kB, so the event loop never waits long.

let selfStart = '0';

/** Remember this process's start time so that temp names can carry it (Store.open calls this). */
export async function initSelf(): Promise<void> {
  selfStart = (await procStartTime('self')) ?? '0';
}

/**
 * A unique name part `<pid>_<start>_<random>`: the owner of every temp file and dir is in its name,
 * so a crashed owner's leftovers can be recognised (see parseOwner) and removed.
 */
export function randomId(): string {
  return `${process.pid}_${selfStart}_${randomBytes(6).toString('hex')}`;
}

export function parseOwner(name: string): { pid: number; start: string } | undefined {
  const m = /(?:^|[-.])(\d+)_(\d+)_[0-9a-f]{12}/.exec(name);
  return m ? { pid: Number(m[1]), start: m[2] } : undefined;
}

export async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
    await fh.sync();
  } catch (e) {
    // Some filesystems refuse fsync on directories (EINVAL); the rename is still atomic there.
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
  } finally {
    await fh?.close();
  }
}

/**
 * Write a file so that readers see either the old or the new content, never a torn one, even after a crash:
 * write a temp file in `tmpDir` (same filesystem), fsync it, rename over the target, fsync the directory.
 */
export async function writeFileAtomic(target: string, data: Buffer | string, tmpDir = dirname(target)): Promise<void> {
  const tmp = join(tmpDir, `.atomic-${randomId()}`);
  const fh = await fsp.open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, target);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dirname(target));
}

export async function exists(p: string): Promise<boolean> {
  try {
    lstatSync(p); // SmallFileIO
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Whether a process with this pid (and, when known, this start time) is alive. */
export async function pidAlive(pid: number, startTime?: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (startTime === undefined) return true;
  const now = await procStartTime(pid);
  // A different start time means the pid was reused by another process.
  return now === undefined || now === startTime;
}

/** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot, which tells pid reuse apart. */
export async function procStartTime(pid: number | 'self' = 'self'): Promise<string | undefined> {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); // SmallFileIO
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state), so field 22 is fields[19]. A zombie is dead for our purposes.
    if (fields[0] === 'Z') return 'zombie';
    return fields[19];
  } catch {
    return undefined;
  }
}
