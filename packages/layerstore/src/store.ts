// The store: an OCI image layout at `root` (oci-layout, index.json, blobs/sha256/...) that tsbuild
// uses directly, plus the directories the builder needs beside it. See README.md for the layout.
import { chmodSync, mkdirSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { FileBlobStore } from './blobs.js';
import { CacheIndex } from './cache.js';
import { Images } from './images.js';
import { LockManager, type LockOptions, type Release } from './lock.js';
import { LeaseHolder, Leases, type Lease } from './leases.js';
import { Tags, emptyIndex } from './tags.js';
import { exists, randomId, writeFileAtomic } from './fsutil.js';
import { prune, cleanTemp, type PruneOptions, type PruneReport } from './prune.js';
import { Snapshots, Snapshotter } from './snapshot/index.js';
import { removeXattr, spreadSubdirs } from '@tsbuild/sys';

export const OciLayoutVersion = '1.0.0';

function privateRoot(root: string): void {
  try {
    chmodSync(root, 0o700);
  } catch (e) {
    // Another user's store opened read-only (tsbuild images as a non-owner): its owner's next
    // open tightens it; reading it at all needs that user's rights anyway.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
  }
}

export class Store {
  readonly blobs: FileBlobStore;
  readonly tags: Tags;
  readonly cache: CacheIndex;
  readonly images: Images;
  readonly locks: LockManager;
  readonly snapshots: Snapshots;
  /** prepare/view/commit/remove over `snapshots`: what RUN steps and containers run on. */
  readonly snapshotter: Snapshotter;
  readonly tmpDir: string;
  readonly snapshotsDir: string;
  readonly leases: Leases;
  /** The lease the store's parts add to (see beginLease). */
  readonly held = new LeaseHolder();

  private constructor(readonly root: string) {
    this.tmpDir = join(root, 'tmp');
    this.snapshotsDir = join(root, 'snapshots');
    this.locks = new LockManager(join(root, 'locks'));
    this.leases = new Leases(root, this.locks);
    this.blobs = new FileBlobStore(root, this.tmpDir, this.held);
    this.tags = new Tags(root, this.locks, this.tmpDir);
    this.cache = new CacheIndex(join(root, 'cache'), this.tmpDir, this.held);
    this.images = new Images(this.blobs, this.tags);
    // Device nodes from layers are kept, as Docker keeps them: the store is closed to other host users
    // (privateRoot), and sandboxes mount every snapshot nodev, so none can be opened through it.
    this.snapshots = new Snapshots(this.snapshotsDir, this.blobs, this.tmpDir, { allowDevices: true }, this.held);
    this.snapshotter = new Snapshotter(this.snapshots, this.blobs);
  }

  /** Open (creating if needed) the store at root. Safe to call from several processes at once. */
  static async open(root: string): Promise<Store> {
    // SmallFileIO (fsutil.ts): six thread-pool round trips at every start otherwise.
    const made = mkdirSync(root, { recursive: true, mode: 0o700 }) !== undefined;
    if (made) noInheritedAcl(root);
    // The store holds every image's files with their own modes (a 0644 secret, a setuid binary,
    // a 0666 device node): no other host user may reach them (moby CVE-2021-41091). Everything
    // lives beneath the root, so its mode alone closes the store; chmod every open, not only at
    // creation, to tighten stores made before (mkdir's mode is also cut by the umask).
    privateRoot(root);
    for (const d of ['blobs/sha256', 'snapshots', 'cache', 'tmp', 'locks'])
      if (mkdirSync(join(root, d), { recursive: true }) !== undefined) noInheritedAcl(join(root, d));
    const store = new Store(root);
    if (!(await exists(join(root, 'oci-layout'))) || !(await exists(store.tags.indexPath))) {
      await store.locks.with('index', async () => {
        if (!(await exists(join(root, 'oci-layout')))) {
          await writeFileAtomic(
            join(root, 'oci-layout'),
            JSON.stringify({ imageLayoutVersion: OciLayoutVersion }),
            store.tmpDir,
          );
        }
        // Under the index lock so that a tag set by another process is never overwritten by an empty index.
        if (!(await exists(store.tags.indexPath))) {
          await writeFileAtomic(store.tags.indexPath, JSON.stringify(emptyIndex(), null, 2) + '\n', store.tmpDir);
        }
      });
    }
    // Leftovers of crashed processes (their owner pid is dead): cheap, and keeps tmp/ from growing.
    await cleanTemp(store.tmpDir, { maxAgeMs: Infinity });
    await store.snapshots.cleanup();
    return store;
  }

  /** A new empty directory under tmp/ (same filesystem as blobs and snapshots, so renames work). */
  async tempDir(prefix = 'tmp'): Promise<string> {
    const safe = prefix.replace(/[^a-zA-Z0-9-]/g, '-').slice(0, 40) || 'tmp';
    const dir = join(this.tmpDir, `${safe}-${randomId()}`);
    spreadSubdirs(this.tmpDir); // see sys/topdir.ts: scratch trees away from recently freed inodes
    await fsp.mkdir(dir, { mode: 0o700 });
    return dir;
  }

  /**
   * From now on, every blob, snapshot and cache record this Store writes or reuses is in a lease
   * owned by this process (leases.ts), which prune respects; the lease ends with endLease() or
   * with the process. A build, push, pull, run, commit or export begins one.
   */
  async beginLease(purpose: string): Promise<Lease> {
    this.held.lease?.drop();
    this.held.lease = await this.leases.forProcess(purpose);
    return this.held.lease;
  }

  endLease(): void {
    this.held.lease?.drop();
    this.held.lease = undefined;
  }

  /** Take the named cross-process lock (see lock.ts); call the returned function to release it. */
  lock(name: string, opts?: LockOptions): Promise<Release> {
    return this.locks.acquire(name, opts);
  }

  withLock<T>(name: string, fn: () => Promise<T>, opts?: LockOptions): Promise<T> {
    return this.locks.with(name, fn, opts);
  }

  /** Remove what nothing reaches (see prune.ts for the protocol). */
  prune(opts?: PruneOptions): Promise<PruneReport> {
    return prune(this, opts);
  }
}

/**
 * A store made in a directory with a default ACL inherits it, and everything made beneath would take its
 * permission bits from that ACL instead of the umask and the modes asked for: a RUN's `touch` would give 0600
 * where docker gives 0644, and the image would depend on where the store is. Removed from what the store
 * makes, once, when it makes it (stores made before keep theirs); no ACL support is no ACL.
 */
function noInheritedAcl(dir: string): void {
  for (const name of ['system.posix_acl_default', 'system.posix_acl_access'])
    try {
      removeXattr(dir, name);
    } catch {
      /* absent, or no ACLs on this filesystem */
    }
}
