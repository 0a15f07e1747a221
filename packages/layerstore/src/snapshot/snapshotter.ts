// The one snapshotter, with containerd's verbs, for everything that runs a process on an image and
// keeps what it wrote: RUN steps and containers.
//
//   view(parent)           the committed snapshots of `parent` (a layer stack), as overlay lowerdirs
//                          (no key: a view here is only the committed snapshots, nothing to name or remove)
//   prepare(key, parent)   an active snapshot: the parent's lowerdirs plus a fresh upperdir and workdir
//   mounts(key, parent)    the mounts of an active snapshot prepared before (a container started again)
//   commit(active)         the upperdir's diff as one OCI layer in the blob store (overlay whiteouts and
//                          opaque dirs become OCI whiteouts); read beneath directory fds (entries.ts)
//   adopt(chainID, dir)    a committed upperdir made the snapshot of the layer it became (renamed in,
//                          no unpack: containerd's Commit(name, key) for a RUN step's diff)
//   remove(key)            an active snapshot's directory, beneath directory fds (@tsbuild/sys's rmtree)
//
// The mount itself is the sandbox's (it mounts what these mounts name), as containerd's runtime
// mounts what its snapshotter returns. The key of an active snapshot is the directory it lives
// in, chosen by its user: a RUN step's scratch dir under tmp/, a container's directory (whose
// lease lives as long as it does). Committed snapshots are Snapshots' (one per layer, by ChainID,
// with their .boot sidecars and leases); view() unpacks the missing ones.
import { lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreError, type BlobStore, type Digest, type Entry, type Layer } from '../types.js';
import { entriesFromDirectory } from '../layer/entries.js';
import { writeLayer, type WriteLayerOptions } from '../layer/write.js';
import { removeTreeBeneath, getXattr, overlayXattrPrefix } from '@tsbuild/sys';
import type { Snapshots } from './snapshots.js';

/** What to mount for a process's root: lowerdirs top first; upperdir and workdir for an active snapshot. */
export interface SnapshotMounts {
  lowerdirs: string[];
  upperdir?: string;
  workdir?: string;
}

export interface ActiveSnapshot extends SnapshotMounts {
  key: string;
  upperdir: string;
  workdir: string;
}

export interface CommitOptions extends Pick<WriteLayerOptions, 'compression' | 'sourceDateEpoch' | 'written'> {
  /** Paths (relative to the root, no leading slash) left out of the layer with everything below them. */
  exclude?: string[];
  /**
   * Called before the upperdir is read; the function it returns after. A container that still runs
   * is frozen here: the diff is walked by path, and a process left running could swap a directory
   * for a symlink between two steps of the walk.
   */
  quiesce?: () => Promise<() => void>;
  /**
   * The upperdir may change while it is read (a container committed without being paused): walk
   * it beneath its fd, never following a directory swapped for a symlink (entries.ts `live`).
   */
  live?: boolean;
}

/** Whether an upperdir or snapshot directory is opaque (hides what the layers below have there). */
export function isOpaque(dir: string): boolean {
  return getXattr(dir, overlayXattrPrefix() + 'opaque')?.toString() === 'y';
}

async function* without(src: AsyncIterable<Entry>, excluded: string[]): AsyncGenerator<Entry> {
  for await (const e of src) {
    const p = e.path.replace(/\/$/, '');
    if (excluded.some((x) => p === x || p.startsWith(x + '/'))) continue;
    yield e;
  }
}

export class Snapshotter {
  constructor(
    private readonly snapshots: Snapshots,
    private readonly blobs: BlobStore,
  ) {}

  /** The read-only mounts of `parent`, unpacking (and leasing) any layer not yet unpacked. */
  async view(parent: readonly Layer[]): Promise<SnapshotMounts> {
    if (parent.length === 0) return { lowerdirs: [] };
    const snaps = await this.snapshots.ensure(parent);
    return { lowerdirs: snaps.map((s) => s.path).reverse() };
  }

  /**
   * A new writable snapshot in directory `key` (made if missing; its upperdir must not exist yet)
   * over `parent`: a layer stack, or the mounts of one the caller has already (a build's stage,
   * whose top layers may still be diffs being written).
   */
  async prepare(key: string, parent: readonly Layer[] | SnapshotMounts): Promise<ActiveSnapshot> {
    const { lowerdirs } = 'lowerdirs' in parent ? parent : await this.view(parent);
    const upperdir = join(key, 'upper');
    const workdir = join(key, 'work');
    await mkdir(key, { recursive: true });
    await mkdir(upperdir);
    await mkdir(workdir);
    return { key, lowerdirs, upperdir, workdir };
  }

  /**
   * The mounts of the active snapshot prepared earlier in `key` over `parent` (a container started
   * again keeps its upperdir). Never makes `key`: one removed meanwhile is an error, not a new one.
   */
  async mounts(key: string, parent: readonly Layer[]): Promise<ActiveSnapshot> {
    const upperdir = join(key, 'upper');
    const workdir = join(key, 'work');
    const st = await lstat(upperdir).catch(() => undefined);
    if (!st?.isDirectory()) throw new StoreError('not-found', `no active snapshot in ${key}`);
    await mkdir(workdir).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    const { lowerdirs } = await this.view(parent);
    return { key, lowerdirs, upperdir, workdir };
  }

  /** The diff in the active snapshot's upperdir, as one layer in the blob store (temp, verify, fsync, rename). */
  async commit(active: Pick<ActiveSnapshot, 'upperdir'>, opts: CommitOptions = {}): Promise<Layer> {
    // Stored uncompressed unless asked: compression waits until the image leaves the store (compressed.ts).
    const { exclude = [], quiesce, live, compression = 'none', ...rest } = opts;
    const write = { ...rest, compression };
    const thaw = quiesce ? await quiesce() : () => {};
    try {
      if (exclude.length === 0 && !live)
        return await writeLayer(this.blobs, active.upperdir, { ...write, overlay: true });
      const entries = entriesFromDirectory(active.upperdir, {
        overlay: true,
        sourceDateEpoch: write.sourceDateEpoch,
        live,
      });
      return await writeLayer(this.blobs, without(entries, exclude), write);
    } finally {
      thaw();
    }
  }

  /**
   * Makes `dir`, the upperdir a layer was committed from, the committed snapshot of that layer's
   * `chainID` (renamed in, no unpack); removed instead when that snapshot exists already.
   */
  async adopt(chainID: Digest, dir: string): Promise<void> {
    await this.snapshots.adopt(chainID, dir);
  }

  /** Removes an active snapshot's directory beneath its fd, never following a link a process left in it. */
  remove(key: string): void {
    removeTreeBeneath(key);
  }
}
