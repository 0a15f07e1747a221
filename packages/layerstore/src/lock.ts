// Cross-process exclusive locks without native addons.
//
// A lock is a file `locks/<name>.lock` created with O_CREAT|O_EXCL ('wx'), so exactly one creator wins.
// It holds {pid, start, created}: `start` is the holder's start time from /proc/<pid>/stat, so a
// recycled pid is not mistaken for the holder. A waiter that finds the holder dead (SIGKILLed, crashed)
// breaks the lock; breaking is itself serialised by a second 'wx' file `<name>.lock.break` so that two
// waiters cannot both break the lock and then delete each other's fresh lock. A break file older than
// BREAK_STALE_MS is left over from a crash in the few microseconds of breaking and is removed.
// Waiters retry with jittered exponential backoff (1 ms .. 50 ms) until the timeout.
import { promises as fsp, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from './types.js';
import { pidAlive, processStart } from './fsutil.js';

const BREAK_STALE_MS = 10_000;
/** A lock file that cannot be parsed (holder crashed between create and write) is stale after this. */
const EMPTY_STALE_MS = 2_000;

interface Holder {
  pid: number;
  start?: string;
  created: number;
}

export interface LockOptions {
  /** Give up after this many ms (default 120 s). */
  timeoutMs?: number;
}

export type Release = () => Promise<void>;

export class LockManager {
  constructor(readonly dir: string) {}

  path(name: string): string {
    if (!/^[a-zA-Z0-9._-]+$/.test(name)) throw new StoreError('invalid', `bad lock name "${name}"`);
    return join(this.dir, `${name}.lock`);
  }

  async acquire(name: string, opts: LockOptions = {}): Promise<Release> {
    const file = this.path(name);
    const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
    const me: Holder = { pid: process.pid, start: processStart('self'), created: Date.now() };
    let delay = 1;
    for (;;) {
      try {
        // SmallFileIO (fsutil.ts): create, write and close in one call, and an unlink, on this thread.
        writeFileSync(file, JSON.stringify(me), { flag: 'wx', mode: 0o644 });
        let released = false;
        return async () => {
          if (released) return;
          released = true;
          rmSync(file, { force: true });
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      await this.breakIfStale(file);
      if (Date.now() > deadline) throw new StoreError('io', `timed out waiting for lock ${file}`, file);
      await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())));
      delay = Math.min(delay * 2, 50);
    }
  }

  async with<T>(name: string, fn: () => Promise<T>, opts?: LockOptions): Promise<T> {
    const release = await this.acquire(name, opts);
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  /**
   * Wait until nobody holds the lock (breaking it if its holder is dead), without taking it: for a
   * process that must not act while another holds it but need not exclude others (leases.ts).
   */
  async waitFree(name: string, opts: LockOptions = {}): Promise<void> {
    const file = this.path(name);
    const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
    let delay = 1;
    for (;;) {
      // SmallFileIO (fsutil.ts): the common case is one failing stat, asked not to throw (a thrown ENOENT is an
      // Error made and caught, ~7 µs warm, more early in a process, and a cached step asks ~10 times).
      if (!statSync(file, { throwIfNoEntry: false })) return;
      await this.breakIfStale(file);
      if (Date.now() > deadline) throw new StoreError('io', `timed out waiting for lock ${file}`, file);
      await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())));
      delay = Math.min(delay * 2, 50);
    }
  }

  /** Remove the lock if its holder is gone. Safe against concurrent breakers (see the header comment). */
  private async breakIfStale(file: string): Promise<void> {
    const before = await readHolder(file);
    if (before === 'absent' || !(await isStale(file, before))) return;
    const breaker = `${file}.break`;
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(breaker, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      try {
        const st = await fsp.stat(breaker);
        if (Date.now() - st.mtimeMs > BREAK_STALE_MS) await fsp.rm(breaker, { force: true });
      } catch {
        /* gone already */
      }
      return;
    }
    await fh.close();
    try {
      // Re-read under the break lock: only remove the very holder we judged stale.
      const again = await readHolder(file);
      if (again !== 'absent' && sameHolder(before, again) && (await isStale(file, again)))
        await fsp.rm(file, { force: true });
    } finally {
      await fsp.rm(breaker, { force: true });
    }
  }
}

async function readHolder(file: string): Promise<Holder | 'absent' | 'unreadable'> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw e;
  }
  try {
    const h = JSON.parse(text) as Holder;
    return typeof h.pid === 'number' ? h : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

function sameHolder(a: Holder | 'unreadable', b: Holder | 'unreadable'): boolean {
  if (a === 'unreadable' || b === 'unreadable') return a === b;
  return a.pid === b.pid && a.start === b.start && a.created === b.created;
}

async function isStale(file: string, h: Holder | 'unreadable'): Promise<boolean> {
  if (h === 'unreadable') {
    // Created but not yet written, or the writer died in between: judge by age.
    try {
      const st = await fsp.stat(file);
      return Date.now() - st.mtimeMs > EMPTY_STALE_MS;
    } catch {
      return false;
    }
  }
  return !pidAlive(h.pid, h.start);
}
