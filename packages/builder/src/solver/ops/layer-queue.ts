// The layers of one build on their way into the store (see LayerQueue); steps hand their diffs over
// with commitDiff (commit.ts).
import { existsSync, promises as fsp } from 'node:fs';
import { chainID, type Digest, type Layer, type Store } from '@tsbuild/layerstore';
import type { Reporter } from '../../progress/index.js';
import { BuildError } from '../../errors.js';
import { isPending, type PendingLayer, type StageLayer } from '../../rootfs/layers.js';
import { trace } from '../../trace.js';

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
 * A layer of at most this many bytes (one tar chunk) lets the next layer start once its bytes are in
 * its temp file, and is fsynced and renamed beside the queue (see LayerQueue).
 */
export const SMALL_LAYER = 1 << 20;
/** How many small layers may be syncing beside the queue at once; a further one is waited for whole. */
export const SYNCING_MAX = 8;

/** What a layer's writer tells the queue: all `size` bytes are in the temp file, its fsync is next. */
export type Written = (size: number) => void;

/**
 * The layers of one build on their way into the store: tarred one at a time, in the order the steps
 * finished (one writer already keeps both cores busy, and memory stays that of one), then adopted as
 * snapshots by finish(). The fsync, rename and directory fsync that make a layer a blob wait for the
 * disk, not for this thread: a small layer's (SMALL_LAYER) proceed beside the queue once its writer says
 * `written`, so the next layer is tarred meanwhile and the syncs of many small layers overlap (ext4
 * commits concurrent fsyncs in one journal commit; one after the other, 17 one-file layers took ~2.5 ms
 * each, much more while other steps' records were being synced). A large layer is waited for whole:
 * its fsync is the bulk of its disk writes. Either way the layer's promise resolves only once the blob
 * is durable under its name, and nothing names it before (cache records and snapshots wait for it).
 */
export class LayerQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private readonly held: Held[] = [];
  private readonly work = new Set<Promise<unknown>>();
  private writing = 0;
  /** Small layers released by the queue whose syncs are still under way. */
  private syncing = 0;
  private failure: Error | undefined;

  constructor(
    private readonly store: Store,
    private readonly reporter: Reporter,
    private readonly signal?: AbortSignal,
  ) {}

  /**
   * Queue a layer write; a failure fails the build (at the next step, or in finish()). `make` calls
   * `written` once the layer's bytes are in its temp file (writeLayer's option), if it can.
   */
  write(label: string, make: (written: Written) => Promise<Layer>): Promise<Layer> {
    this.writing++;
    trace(`${label}: layer queued`);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let early = false;
    const written: Written = (size) => {
      if (early || size > SMALL_LAYER || this.syncing >= SYNCING_MAX) return;
      early = true;
      this.syncing++;
      release();
    };
    const p = this.tail
      .then(async () => {
        // An interrupted build writes no more layers: the ones being written end (each blob lands
        // whole or not at all), the queued ones are dropped, and the process exits at once.
        this.signal?.throwIfAborted();
        trace(`${label}: writing its layer`);
        await layerGate(this.signal);
        const layer = await make(written);
        trace(`${label}: layer written (${(layer.size / 1e6).toFixed(1)} MB)`);
        return layer;
      })
      .finally(() => {
        this.writing--;
        if (early) this.syncing--;
      });
    // The next layer starts when this one is written, or once its bytes are (a small one).
    this.tail = Promise.race([p, released]).catch(() => {});
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
    await this.settle().catch(async (e: unknown) => {
      // A layer failed: the others still become snapshots (the failed one's diff removed) before it is thrown.
      await this.adopt().catch(() => {});
      throw e;
    });
    await this.adopt();
  }

  /** finish()'s first half: every layer and the work tracked on them done. Throws the first failure. */
  async settle(): Promise<void> {
    const handle = this.writing > 0 ? this.reporter.step('writing layers') : undefined;
    while (this.work.size > 0) await Promise.all([...this.work]);
    if (this.failure) handle?.fail(this.failure.message);
    else handle?.done();
    this.check();
  }

  /**
   * finish()'s second half: each diff renamed into snapshots/ (a build does it while it writes the
   * image, which reads blobs only). Call after settle().
   */
  async adopt(): Promise<void> {
    for (const h of this.held) {
      if (h.adopted) continue;
      h.adopted = true;
      const id = await chainOf([...h.below, h.pending]).catch(() => undefined);
      if (id) await this.store.snapshotter.adopt(id, h.pending.dir);
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
