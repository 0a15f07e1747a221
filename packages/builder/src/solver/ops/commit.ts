// The end of every filesystem step: the diff directory becomes one layer in the store and,
// without copying, the snapshot that later steps stack on. An empty diff makes no layer.
//
// The layer is written in the background. A step hands over its diff as soon as the diff is
// complete, and the next step starts on it as a lowerdir while this one's tar, hashes,
// compression and fsync proceed (for a RUN that wrote 500 MB, that is seconds). Nothing later
// steps do needs the layer itself: cache keys chain on keys, not on diffIDs. Only the names of
// snapshots do (ChainIDs), so a diff stays in tmp/ under a name of its own until the build has
// finished, and is then renamed into snapshots/ — never while a step of this build may be
// using its path. A build killed on the way leaves blobs (verified, or temp files of a dead
// owner), cache records written only after their blob, and diffs in tmp/ that the next
// Store.open removes; a record whose snapshot is missing is unpacked from its blob when used.
import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { chainID, type Digest, type Layer, type Store } from '@tsbuild/layerstore';
import { writeLayer, type Entry } from '@tsbuild/layerstore/layer';
import type { StepContext } from '../solver.js';
import type { Reporter } from '../../progress/index.js';
import { BuildError } from '../../errors.js';
import { isPending, type PendingLayer, type StageLayer } from '../../rootfs/layers.js';
import { trace } from '../../trace.js';

/**
 * Hands a step's finished diff over to the build's LayerQueue. Either a scratch dir itself (a
 * COPY's staging dir), which the queue then owns (`cleanup` leaves it), with the entries that
 * describe it when the step knows them; or a dir inside the step's scratch dir (a RUN's
 * upperdir), which is moved out of it first and read back from disk.
 */
export async function commitDiff(
  ctx: StepContext,
  diff: { dir: string; scratch: Scratch; entries?: Entry[] } | { dir: string; scratch?: undefined },
  overlay: boolean,
  settle?: () => Promise<void>,
): Promise<StageLayer | null> {
  // `settle` finishes dir before it is handed over.
  const entries = diff.scratch ? diff.entries : undefined;
  if (entries ? entries.length === 0 : (await fsp.readdir(diff.dir)).length === 0) {
    await settle?.();
    return null;
  }
  const { store, sourceDateEpoch, compression } = ctx.opts;
  const layers = ctx.solver.layers;
  const write = (source: Entry[] | string) => () =>
    writeLayer(store.blobs, source, { overlay, compression, sourceDateEpoch });
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

interface Held {
  pending: PendingLayer;
  below: StageLayer[];
  /** A temp dir to remove once the diff inside it is a snapshot. */
  container: string | undefined;
  adopted: boolean;
}

/**
 * For tests of the background writer (test/background.test.ts): with TSBUILD_TEST_LAYER_GATE=FILE,
 * no layer is written until FILE exists, so a test holds the build in the state it wants to
 * check (a later step running on a layer not yet written; every step done, layers still to
 * come) instead of hoping a slow layer keeps it there long enough.
 */
async function layerGate(signal?: AbortSignal): Promise<void> {
  const gate = process.env.TSBUILD_TEST_LAYER_GATE;
  while (gate && !existsSync(gate)) {
    signal?.throwIfAborted();
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The layers of one build on their way into the store: written one at a time, in the order the
 * steps finished (one writer already keeps both cores busy, and memory stays that of one), then
 * adopted as snapshots by finish().
 */
export class LayerQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private readonly held: Held[] = [];
  private readonly work = new Set<Promise<unknown>>();
  private writing = 0;
  private failure: Error | undefined;

  constructor(
    private readonly store: Store,
    private readonly reporter: Reporter,
    private readonly signal?: AbortSignal,
  ) {}

  /** Queue a layer write; a failure fails the build (at the next step, or in finish()). */
  write(label: string, make: () => Promise<Layer>): Promise<Layer> {
    this.writing++;
    const p = this.tail
      .then(async () => {
        // An interrupted build writes no more layers: the one being written ends (its blob lands
        // whole or not at all), the queued ones are dropped, and the process exits at once.
        this.signal?.throwIfAborted();
        trace(`${label}: writing its layer`);
        await layerGate(this.signal);
        const layer = await make();
        trace(`${label}: layer written (${(layer.size / 1e6).toFixed(1)} MB)`);
        return layer;
      })
      .finally(() => this.writing--);
    this.tail = p.catch(() => {});
    const failed = p.catch((e: unknown) => {
      throw new BuildError(`${label}: writing its layer failed: ${(e as Error).message ?? e}`);
    });
    this.track(failed);
    return failed;
  }

  /** A diff whose layer `layer` will be; `below` are the layers under it in its stage. */
  hold(dir: string, layer: Promise<Layer>, below: StageLayer[], container?: string): PendingLayer {
    const pending = { dir, layer };
    this.held.push({ pending, below, container, adopted: false });
    return pending;
  }

  /** Work that finish() waits for (cache records); its failure fails the build. */
  track(p: Promise<unknown>): void {
    const q = p.catch((e: unknown) => {
      this.failure ??= e instanceof BuildError ? e : new BuildError(String((e as Error).message ?? e));
    });
    this.work.add(q);
    void q.then(() => this.work.delete(q));
  }

  /** Throws if a layer failed to be written: steps check before they start. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /**
   * Waits for every layer and the work tracked on them, then renames each diff into snapshots/
   * under its ChainID (a diff whose layer failed is removed). Call when no step of the build
   * runs any more. Throws the first failure.
   */
  async finish(): Promise<void> {
    const handle = this.writing > 0 ? this.reporter.step('writing layers') : undefined;
    while (this.work.size > 0) await Promise.all([...this.work]);
    if (this.failure) handle?.fail(this.failure.message);
    else handle?.done();
    for (const h of this.held) {
      if (h.adopted) continue;
      h.adopted = true;
      const id = await chainOf([...h.below, h.pending]).catch(() => undefined);
      if (id) await this.store.snapshots.adopt(id, h.pending.dir);
      else await fsp.rm(h.pending.dir, { recursive: true, force: true });
      if (h.container) await fsp.rm(h.container, { recursive: true, force: true });
    }
    trace('layers adopted as snapshots');
    this.check();
  }
}

async function chainOf(layers: StageLayer[]): Promise<Digest> {
  const diffIDs: Digest[] = [];
  for (const l of layers) diffIDs.push(isPending(l) ? (await l.layer).diffID : l.diffID);
  return chainID(diffIDs);
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
