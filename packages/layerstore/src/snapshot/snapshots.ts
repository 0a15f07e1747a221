// Unpacked layers on disk, one directory per layer (overlay lowerdir form, NOT flattened),
// named by the layer's ChainID hex under <store>/snapshots.
//
// A snapshot directory is complete or absent: layers are unpacked into a temp dir and
// renamed into place; a crash leaves only the temp dir, which cleanup() removes.
// Two processes ensuring the same layer: a lock file per ChainID makes the second wait and
// then find the snapshot; rename-if-absent is kept as a second line of defence.
//
// Durable without a sync on the build's path: a RUN's upperdir (a volatile overlay) and an
// unpacked layer are never fsynced, so a kernel crash or a power loss can leave a snapshot torn.
// Blobs are fsynced before any cache record or tag names them, so the blob is the truth and a
// snapshot only a cache of it. Each snapshot has a sidecar `<hex>.boot` naming the boot (the
// kernel's boot_id) it was written in, written before the snapshot is renamed into place. Page
// cache outlives any process, so within one boot a snapshot is whole once renamed; one whose
// sidecar names another boot, or is missing or torn, is not trusted: it is removed and unpacked
// again from its blob. The price is one re-unpack of the layers a build uses after each reboot.
//
// With a lease (leases.ts), every snapshot used or made goes into it before it is looked at or
// renamed into place, so prune leaves it alone while this process runs.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobStore, Digest, Layer, Snapshot } from '../types.js';
import { unpackLayer, type UnpackOptions } from '../layer/unpack.js';
import { chainIDs } from './chain-id.js';
import { isDigest } from '../digest.js';
import { LockManager } from '../lock.js';
import { pidAlive, spreadSubdirs } from '@tsbuild/sys';
import type { LeaseHolder } from '../leases.js';

function hexOf(d: Digest): string {
  if (!isDigest(d)) throw new RangeError(`not a sha256 digest: ${d}`);
  return d.slice('sha256:'.length);
}

/** SmallFileIO (fsutil.ts): one stat, asked not to throw, not a trip through the thread pool per layer of a stack. */
function exists(p: string): boolean {
  return statSync(p, { throwIfNoEntry: false }) !== undefined;
}

let boot: string | undefined;
/** This boot's id: a snapshot written in another boot may have been torn by the crash that ended it. */
export function bootId(): string {
  return (boot ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
}

export class Snapshots {
  /** Layers this instance unpacked (not found ready): lets callers and tests see work done. */
  readonly stats = { unpacked: 0 };
  constructor(
    readonly root: string,
    private readonly blobs: BlobStore,
    private readonly tmpDir: string,
    private readonly unpackOptions: Pick<UnpackOptions, 'allowDevices'> = {},
    private readonly held?: LeaseHolder,
  ) {}

  private lockManager: LockManager | undefined;
  /**
   * Under the snapshot's lock, `<root>/<hex>.lock`: the store's lock (pid + start time, so a crashed
   * holder's lock is broken even when its pid was reused; breaking serialised). No timeout: the holder
   * may be unpacking a layer of gigabytes; a dead holder's lock is broken.
   */
  private withLock<T>(chainID: Digest, fn: () => Promise<T>): Promise<T> {
    this.lockManager ??= new LockManager(this.root);
    return this.lockManager.with(hexOf(chainID), fn, { timeoutMs: Infinity });
  }

  pathOf(chainID: Digest): string {
    return join(this.root, hexOf(chainID));
  }

  async get(chainID: Digest): Promise<Snapshot | undefined> {
    const path = this.pathOf(chainID);
    if (!exists(path)) return undefined;
    if (this.writtenThisBoot(path)) return { chainID, path };
    // Written before a reboot and never known to be on disk: dropped (the blob unpacks it again),
    // under its lock and only if still stale there: another process may have unpacked it anew
    // meanwhile and be using it.
    return this.withLock(chainID, () => this.getLocked(chainID));
  }

  /** get() for a caller that holds the snapshot's lock. */
  private async getLocked(chainID: Digest): Promise<Snapshot | undefined> {
    const path = this.pathOf(chainID);
    if (!exists(path)) return undefined;
    if (this.writtenThisBoot(path)) return { chainID, path };
    await this.remove(chainID);
    return undefined;
  }

  private writtenThisBoot(path: string): boolean {
    try {
      return readFileSync(`${path}.boot`, 'utf8') === bootId();
    } catch {
      return false;
    }
  }

  /** Marks a snapshot about to be renamed to path as written in this boot (before the rename). */
  private markBoot(path: string): void {
    writeFileSync(`${path}.boot`, bootId());
  }

  /** One snapshot per layer, bottom first, unpacking the missing ones. */
  async ensure(layers: readonly Layer[]): Promise<Snapshot[]> {
    const ids = chainIDs(layers.map((l) => l.diffID));
    // Leased before looking: a snapshot found here stays; a blob to unpack from stays. One append, one wait.
    await this.held?.reuseAll([
      ['snapshot', ids],
      ['blob', layers.map((l) => l.digest)],
    ]);
    const out: Snapshot[] = [];
    // The directories are made only to unpack: a stack found whole (every cached step's view) makes none.
    let dirs: Promise<unknown> | undefined;
    for (let i = 0; i < layers.length; i++) {
      const id = ids[i];
      const have = await this.get(id);
      if (have) {
        out.push(have);
        continue;
      }
      await (dirs ??= mkdir(this.root, { recursive: true }).then(() => mkdir(this.tmpDir, { recursive: true })));
      await this.withLock(id, async () => {
        if (await this.getLocked(id)) return; // another process made it while we waited
        await this.unpackInto(layers[i], id);
      });
      out.push({ chainID: id, path: this.pathOf(id) });
    }
    return out;
  }

  private async unpackInto(layer: Layer, id: Digest): Promise<void> {
    const tmp = join(this.tmpDir, `unpack-${hexOf(id).slice(0, 16)}-${process.pid}-${randomBytes(4).toString('hex')}`);
    spreadSubdirs(this.tmpDir);
    await mkdir(tmp, { mode: 0o755 });
    try {
      await unpackLayer(this.blobs.open(layer.digest), layer.mediaType, tmp, {
        ...this.unpackOptions,
        diffID: layer.diffID,
        mode: 'overlay',
      });
      await this.renameIn(tmp, id);
      this.stats.unpacked++;
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /** rename(2) a finished dir into place; if the snapshot appeared meanwhile, drop ours. */
  private async renameIn(dir: string, id: Digest): Promise<void> {
    this.markBoot(this.pathOf(id));
    try {
      await rename(dir, this.pathOf(id));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Take an already-made layer directory (e.g. an overlay upperdir) as the snapshot for chainID. */
  async adopt(chainID: Digest, dir: string): Promise<Snapshot> {
    await mkdir(this.root, { recursive: true });
    await this.held?.reuse('snapshot', chainID);
    if (await this.get(chainID)) await rm(dir, { recursive: true, force: true });
    else await this.withLock(chainID, () => this.renameIn(dir, chainID));
    return { chainID, path: this.pathOf(chainID) };
  }

  /** Remove a snapshot: renamed aside first so no reader ever sees it half-deleted. */
  async remove(chainID: Digest): Promise<void> {
    const trash = await this.moveAside(chainID);
    if (trash) await rm(trash, { recursive: true, force: true });
  }

  /**
   * Take a snapshot out of snapshots/ in one rename (prune does this under its lock, and the slow
   * recursive removal after); returns where it went, which the caller removes, or undefined if absent.
   */
  async moveAside(chainID: Digest): Promise<string | undefined> {
    // Synchronous calls: prune makes one per snapshot with gc-sweep held (SmallFileIO, fsutil.ts).
    mkdirSync(this.tmpDir, { recursive: true });
    const trash = join(
      this.tmpDir,
      `trash-${hexOf(chainID).slice(0, 16)}-${process.pid}-${randomBytes(4).toString('hex')}`,
    );
    try {
      renameSync(this.pathOf(chainID), trash);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    rmSync(`${this.pathOf(chainID)}.boot`, { force: true });
    return trash;
  }

  async list(): Promise<Snapshot[]> {
    const names = await readdir(this.root).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [] as string[];
      throw e;
    });
    return names
      .filter((n) => isDigest(`sha256:${n}`))
      .sort()
      .map((n) => ({ chainID: `sha256:${n}`, path: join(this.root, n) }));
  }

  /** Remove temp dirs left by crashed processes (their pid is gone). */
  async cleanup(): Promise<number> {
    let names: string[] = [];
    try {
      names = readdirSync(this.tmpDir); // SmallFileIO (fsutil.ts): at every Store.open
    } catch {
      /* none */
    }
    let removed = 0;
    for (const n of names) {
      const m = /^(?:unpack|trash)-[0-9a-f]+-(\d+)-[0-9a-f]+$/.exec(n);
      if (!m) continue;
      const pid = Number(m[1]);
      // These names carry no start time: a reused pid keeps them until the next cleanup.
      if (pid === process.pid || pidAlive(pid)) continue;
      await rm(join(this.tmpDir, n), { recursive: true, force: true });
      removed++;
    }
    return removed;
  }
}
