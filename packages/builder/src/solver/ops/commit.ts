// The end of every filesystem step: the diff directory becomes one layer in the store and,
// without copying, the snapshot that later steps stack on. An empty diff makes no layer.
//
// The layer is written in the background, uncompressed. A step hands over its diff as soon as the
// diff is complete, and the next step starts on it as a lowerdir while this one's tar, hash and
// fsync proceed (for a RUN that wrote 500 MB, that is seconds). Nothing later
// steps do needs the layer itself: cache keys chain on keys, not on diffIDs. Only the names of
// snapshots do (ChainIDs), so a diff stays in tmp/ under a name of its own until the build has
// finished, and is then renamed into snapshots/ — never while a step of this build may be
// using its path. A build killed on the way leaves blobs (verified, or temp files of a dead
// owner), cache records written only after their blob, and diffs in tmp/ that the next
// Store.open removes; a record whose snapshot is missing is unpacked from its blob when used.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '@tsbuild/layerstore';
import { writeLayer } from '@tsbuild/layerstore/layer';
import type { StepContext } from './context.js';
import type { StageLayer } from '../../rootfs/layers.js';
import type { EntryList } from './staging.js';
import type { Written } from './layer-queue.js';

/**
 * Hands a step's finished diff over to the build's LayerQueue. Either a scratch dir itself (a
 * COPY's staging dir), which the queue then owns (`cleanup` leaves it), with the entries that
 * describe it when the step knows them; or a dir inside the step's scratch dir (a RUN's
 * upperdir), which is moved out of it first and read back from disk.
 */
export async function commitDiff(
  ctx: StepContext,
  diff: { dir: string; scratch: Scratch; entries?: EntryList } | { dir: string; scratch?: undefined },
  overlay: boolean,
  settle?: () => Promise<void>,
): Promise<StageLayer | null> {
  // `settle` finishes dir before it is handed over.
  const entries = diff.scratch ? diff.entries : undefined;
  if (entries ? entries.length === 0 : (await fsp.readdir(diff.dir)).length === 0) {
    await settle?.();
    return null;
  }
  // Layers are stored uncompressed, their diffID hashed as the tar is written: the build's
  // --compression applies when the image leaves the store (push, outputs, cache export), which
  // compresses each layer once and remembers it (layerstore's compressed.ts).
  const { store, sourceDateEpoch } = ctx.opts;
  const compression = 'none';
  const layers = ctx.stages.layers;
  // An overlay upperdir (RUN) is committed by the snapshotter, as a container's is; a staged diff
  // (COPY, WORKDIR) is plain files, or the entries that name them.
  // `written` lets the queue start the next layer while a small one is fsynced (LayerQueue).
  const write = (source: EntryList | string) => async (written: Written) => {
    const layer = await (overlay && typeof source === 'string'
      ? store.snapshotter.commit({ upperdir: source }, { compression, sourceDateEpoch, written })
      : writeLayer(store.blobs, source, { overlay, compression, sourceDateEpoch, written }));
    // Said at once: a COPY's layer is often written before the step has finished placing its files.
    ctx.opts.onLayer?.(ctx.stage, layer);
    return layer;
  };
  const below = [...ctx.state.layers];
  if (diff.scratch) {
    // The entries name the files their content comes from (context files, or files in dir) in the
    // walk's order, so the layer can be written while `settle` is still filling dir.
    const early = entries && layers.write(ctx.state.label, write(entries));
    await settle?.();
    diff.scratch.kept = true;
    return layers.hold(diff.dir, early ?? layers.write(ctx.state.label, write(diff.dir)), below);
  }
  await settle?.();
  const [dir, container] = await moveOut(store, diff.dir);
  return layers.hold(dir, layers.write(ctx.state.label, write(dir)), below, container);
}

/** The diff, renamed out of the step's scratch dir (which the step removes) into a temp dir of its own. */
async function moveOut(store: Store, dir: string): Promise<[string, string]> {
  const container = await store.tempDir('layer-');
  const to = join(container, 'diff');
  await fsp.rename(dir, to);
  return [to, container];
}

export interface Scratch {
  path: string;
  /** Removes the dir, unless a pending layer kept it as its diff. */
  cleanup(): Promise<void>;
  kept?: boolean;
}

/** A fresh directory in the store's temp area. */
export async function scratchDir(ctx: StepContext, prefix: string): Promise<Scratch> {
  const path = await ctx.opts.store.tempDir(prefix);
  const s: Scratch = {
    path,
    cleanup: async () => {
      if (!s.kept) await fsp.rm(path, { recursive: true, force: true });
    },
  };
  return s;
}
