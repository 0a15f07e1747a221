// Leases, as containerd has them: what a process (or a container) is using right now, so that
// prune keeps it whatever its age and whether or not anything else reaches it.
//
// A lease is a file leases/<name>.lease: a header line (JSON: owner, purpose, created), then one
// line per thing used, `blob sha256:…`, `snapshot sha256:<chainID>` or `cache sha256:<key>`,
// appended with O_APPEND, one write per batch and no fsync (after a crash its owner is dead and the
// lease expires anyway). A lease lives while its owner does: a process, named by pid and start
// time so that a reused pid does not keep it alive; or a path in the store (a container's
// directory). Prune removes expired leases.
//
// Protocol with prune (prune.ts), which holds the `gc-sweep` lock for its mark and unlink decisions:
//  - New content (a blob, snapshot or cache record about to be renamed into place) is added to the
//    lease BEFORE it becomes visible. Prune lists its candidates before it reads the leases, so a
//    candidate was either leased before prune read the leases, or was visible before it was leased,
//    which new content never is. Unless the same digest or key is already there (garbage prune may
//    be deciding on): so the writer also waits for the sweep (reuse) before its rename.
//  - A cache record may be written after prune listed the records and its writer end before prune
//    reads the leases: prune reads records new or rewritten since its listing under the lock.
//  - Existing content (a cache hit, a base layer, a snapshot to stack on) is added, then the
//    process waits until no prune holds `gc-sweep`, and only then checks that the content exists.
//    An entry written before prune read the leases is kept; one written after was written while
//    prune held the lock, so the check runs after prune finished deleting and tells the truth.
//  - Readers ignore a torn last line: its writer has not returned yet, as if it had not written.
import {
  closeSync,
  constants as fsc,
  mkdirSync,
  openSync,
  promises as fsp,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { StoreError, type Digest } from './types.js';
import { checkDigest, processStart, randomId } from './fsutil.js';
import { leaseKinds, readLease, type LeaseInfo, type LeaseKind } from './lease-file.js';
import type { LockManager } from './lock.js';

/** Content of one kind, for the calls that lease several kinds at once. */
export type LeaseGroup = [kind: LeaseKind, ids: Digest | Iterable<Digest>];

/** The lock prune holds while it marks and decides what to unlink. */
export const SweepLock = 'gc-sweep';

export class Lease {
  private readonly seen = new Set<string>();
  private made = false;
  private dropped = false;

  /** @param processOwned the lease ends with this process (a container's does not) */
  constructor(
    readonly file: string,
    private readonly header: object,
    private readonly leases: Leases,
    private readonly processOwned: boolean,
  ) {}

  /** Record content this process is creating (call before it becomes visible in the store). */
  add(kind: LeaseKind, ids: Digest | Iterable<Digest>): void {
    this.addAll([[kind, ids]]);
  }

  /** add() of several kinds in one write (a cache hit's blobs and snapshots: one append, not two). */
  addAll(groups: LeaseGroup[]): void {
    if (this.dropped) throw new StoreError('invalid', `lease ${this.file} was already dropped`);
    const fresh: string[] = [];
    for (const [kind, ids] of groups)
      for (const id of typeof ids === 'string' ? [ids] : ids) {
        const line = `${kind} ${checkDigest(id, `leased ${kind}`)}`;
        if (!this.seen.has(line)) fresh.push(line);
      }
    if (fresh.length === 0) return;
    if (this.made) {
      try {
        // O_APPEND without O_CREAT: a lease file removed under us is written anew, header first.
        const fd = openSync(this.file, fsc.O_WRONLY | fsc.O_APPEND);
        try {
          writeSync(fd, fresh.join('\n') + '\n');
        } finally {
          closeSync(fd);
        }
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        this.create([...this.seen, ...fresh]);
      }
    } else {
      this.create(fresh);
      this.made = true;
      if (this.processOwned) this.leases.onExit(this);
    }
    for (const l of fresh) this.seen.add(l);
  }

  private create(lines: string[]): void {
    mkdirSync(this.leases.dir, { recursive: true, mode: 0o700 });
    // The header and the entries in one write: a reader sees both or an empty file.
    writeFileSync(this.file, [JSON.stringify(this.header), ...lines].join('\n') + '\n', { flag: 'wx', mode: 0o600 });
  }

  /**
   * Record content that already exists and that this process is about to use; when this returns,
   * prune will not delete it, and whether it is still there can be checked (see the protocol).
   */
  async reuse(kind: LeaseKind, ids: Digest | Iterable<Digest>): Promise<void> {
    await this.reuseAll([[kind, ids]]);
  }

  /** reuse() of several kinds: one append, one wait for the sweep. */
  async reuseAll(groups: LeaseGroup[]): Promise<void> {
    this.addAll(groups);
    await this.leases.settled();
  }

  /** End the lease: what only it protected may be pruned from now on. */
  drop(): void {
    if (this.dropped) return;
    this.dropped = true;
    if (!this.made) return;
    try {
      unlinkSync(this.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

/**
 * What the store's parts (blobs, snapshots, cache) add to: the lease a command began, if any.
 * Without one (library use, read-only commands) they add nothing and only tags and cache records
 * protect content.
 */
export class LeaseHolder {
  lease: Lease | undefined;

  add(kind: LeaseKind, ids: Digest | Iterable<Digest>): void {
    this.lease?.add(kind, ids);
  }

  addAll(groups: LeaseGroup[]): void {
    this.lease?.addAll(groups);
  }

  async reuse(kind: LeaseKind, ids: Digest | Iterable<Digest>): Promise<void> {
    await this.lease?.reuse(kind, ids);
  }

  async reuseAll(groups: LeaseGroup[]): Promise<void> {
    await this.lease?.reuseAll(groups);
  }
}

export class Leases {
  readonly dir: string;
  private readonly atExit = new Set<Lease>();
  private exitHook = false;

  constructor(
    readonly storeRoot: string,
    private readonly locks: LockManager,
  ) {
    this.dir = join(storeRoot, 'leases');
  }

  /** A lease owned by this process. Its file is made on the first add and removed by drop() or at exit. */
  async forProcess(purpose: string): Promise<Lease> {
    const start = processStart('self');
    const known = start ? { start } : {};
    const header = { purpose, pid: process.pid, ...known, created: Date.now() };
    return new Lease(join(this.dir, `${safeName(purpose)}-${randomId()}.lease`), header, this, true);
  }

  /**
   * A lease that lives while `path` (relative to the store root) exists: for a container, whose
   * directory is its life. Make the path first: a lease whose path is absent has expired.
   */
  forPath(name: string, path: string, purpose: string): Lease {
    if (path.startsWith('/') || path.split('/').includes('..')) {
      throw new StoreError('invalid', `lease path ${path} is not inside the store`);
    }
    return new Lease(this.file(name), { purpose, path, created: Date.now() }, this, false);
  }

  /** Remove a named lease (forPath) whatever its state. */
  async remove(name: string): Promise<void> {
    try {
      unlinkSync(this.file(name)); // SmallFileIO (fsutil.ts): one call, where fs.promises.rm is two round trips
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  /**
   * Resolves when no prune is between its mark and its last unlink decision (seconds at most on a
   * large store; a prune that died holding the lock is detected by pid + start time).
   */
  settled(): Promise<void> {
    return this.locks.waitFree(SweepLock, { timeoutMs: 10 * 60_000 });
  }

  /** Every lease, parsed, with whether its owner still lives. */
  async list(): Promise<LeaseInfo[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: LeaseInfo[] = [];
    for (const n of names.filter((x) => x.endsWith('.lease')).sort()) {
      const info = await readLease(this.dir, this.storeRoot, n);
      if (info) out.push(info);
    }
    return out;
  }

  /**
   * What the live leases hold, removing the expired ones. Prune calls this under the sweep lock;
   * check calls it too, so that a dead process's lease does not outlive the next look at the store.
   */
  async live(): Promise<{ blob: Set<Digest>; snapshot: Set<Digest>; cache: Set<Digest>; expired: number }> {
    const out = { blob: new Set<Digest>(), snapshot: new Set<Digest>(), cache: new Set<Digest>(), expired: 0 };
    for (const l of await this.list()) {
      if (!l.live) {
        // Its owner is dead (or its path gone) and can add nothing more: safe to remove.
        await fsp.rm(join(this.dir, l.name), { force: true });
        out.expired++;
        continue;
      }
      for (const k of leaseKinds) for (const d of l[k]) out[k].add(d);
    }
    return out;
  }

  onExit(lease: Lease): void {
    this.atExit.add(lease);
    if (this.exitHook) return;
    this.exitHook = true;
    // A process that ends normally (an error, Ctrl-C) drops its leases; a killed one's expire.
    process.once('exit', () => {
      for (const l of this.atExit) {
        try {
          l.drop();
        } catch {
          /* exiting anyway; the lease expires */
        }
      }
    });
  }

  private file(name: string): string {
    return join(this.dir, `${safeName(name)}.lease`);
  }
}

function safeName(s: string): string {
  return s.replace(/[^a-zA-Z0-9_.-]/g, '-').slice(0, 80) || 'lease';
}
