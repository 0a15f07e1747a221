// The end of every filesystem step: the diff directory becomes one layer in the store and,
// without copying, the snapshot that later steps stack on. An empty diff makes no layer.
import { promises as fsp } from 'node:fs';
import { chainID, writeLayer, type Entry, type Layer } from '@tsbuild/layerstore';
import type { StepContext } from '../solver.js';

export async function commitDiff(ctx: StepContext, dir: string, overlay: boolean, entries?: Entry[], settle?: () => Promise<void>): Promise<Layer | null> {
  // The entries, when the step knows them, describe exactly what is (or is being put) in dir,
  // in the walk's order; `settle` finishes dir before it becomes the snapshot.
  if (entries ? entries.length === 0 : (await fsp.readdir(dir)).length === 0) {
    await settle?.();
    return null;
  }
  const { store, sourceDateEpoch } = ctx.opts;
  const layer = await writeLayer(store.blobs, entries ?? dir, { overlay, compression: ctx.opts.compression, sourceDateEpoch });
  await settle?.();
  const id = chainID([...ctx.state.layers.map((l) => l.diffID), layer.diffID]);
  await store.snapshots.adopt(id, dir);
  return layer;
}

/** A fresh directory in the store's temp area, removed by `cleanup`. */
export async function scratchDir(ctx: StepContext, prefix: string): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await ctx.opts.store.tempDir(prefix);
  return { path, cleanup: () => fsp.rm(path, { recursive: true, force: true }) };
}
