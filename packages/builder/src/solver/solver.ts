// Walks the instruction graph: each stage from its base, each step resolved against the cache
// or executed (RUN in the sandbox, COPY/ADD/WORKDIR by staging a diff), each filesystem step
// snapshotted into exactly one layer. Independent stages run concurrently.
import type { CopyStep, Graph, RunStep, Stage, Step, WorkdirStep } from '@tsbuild/parser';
import { chainID, type Digest, type ImageConfig } from '@tsbuild/layerstore';
import { applyStep, historyText, stepConfig } from '../image/config.js';
import { KeyBuilder, type Inputs } from './cachekey.js';
import { baseState, epochOr } from './base-state.js';
import { inputsId, missNote, pointerId, saveInputs } from './explain-records.js';
import { BuildError } from '../errors.js';
import type { ExplainRow, SettledState, StageState } from './state.js';
import { isPending, type StageLayer } from '../rootfs/layers.js';
import type { Reporter } from '../progress/index.js';
import { runStep } from './ops/run.js';
import { copyStep } from './ops/copy.js';
import { workdirStep } from './ops/workdir.js';
import type { ImportedCache, StepRecord } from '../exporter/cache-share.js';
import { Filesystems } from '../rootfs/filesystems.js';
import { LayerQueue } from './ops/layer-queue.js';
import type { Exec, StepContext, StepOptions } from './ops/context.js';
import { trace } from '../trace.js';

export interface SolveOptions extends StepOptions {
  graph: Graph;
  reporter: Reporter;
  noCache: boolean;
  /** `--no-cache-filter`: the indexes of the stages whose steps ignore the cache (the others may hit). */
  noCacheStages?: Set<number>;
  /** Keys run earlier in this invocation (BuildRequest.ranKeys): hits even under noCache; a step run adds its key. */
  ranKeys?: Set<string>;
  platform: { os: string; architecture: string; variant?: string };
  /** Identifies "the same step" across builds for --explain. */
  identity: string;
  /**
   * Registry cache (--cache-from): records imported for this build only (the store's own record
   * wins), and a hook that fetches a hit's missing layer blob (true when it is now in the store)
   * instead of counting as a miss. Snapshots are unpacked from the fetched blob later, only if a
   * RUN/COPY needs them (store.snapshots.ensure).
   */
  cacheFrom?: ImportedCache;
  /** Base refs (by `baseKey`) whose tag `--pull` moved, with the digest the store had before (for --explain). */
  movedBases?: Map<string, string>;
  // dryRun (StepOptions): compute every key and look each up as a build would, and run and write
  // nothing (no layer, snapshot, cache record or --explain pointer). A miss's state carries its key only.
}

export class Solver {
  readonly explain: ExplainRow[] = [];
  /** The cache record each filesystem step of this build used or made, by stage (for --cache-to). */
  readonly records: { stage: number; key: Digest; value: StepRecord }[] = [];
  private readonly results = new Map<number, Promise<StageState>>();
  readonly fs: Filesystems;
  /** Layers of this build still being written; steps start before their predecessors' are. */
  readonly layers: LayerQueue;
  /** Steps that may read the build context (its stat cache) and whose key is not computed yet. */
  private contextReaders: number;

  constructor(private readonly o: SolveOptions) {
    this.fs = new Filesystems(o.store);
    this.layers = new LayerQueue(o.store, o.reporter, o.signal);
    this.contextReaders = o.graph.stages.reduce((n, s) => n + s.steps.filter(readsContext).length, 0);
  }

  /**
   * Once no step will read the context again, its stat cache is written while a RUN's command runs rather
   * than after the last step, where the build waited for it (~25 ms of this thread for 20,000 files).
   */
  commandStarted(): void {
    if (this.contextReaders > 0 || this.o.dryRun) return;
    this.o.context.flush().catch(() => {
      /* save() at the end writes it, or says nothing either: it is only a cache */
    });
  }

  /**
   * Builds the target stage (and what it needs) and returns its final state, every layer in the store.
   * With `adoptLater`, the new layers' diffs are not yet snapshots: the caller runs `layers.adopt()`.
   */
  async solve(adoptLater = false): Promise<SettledState> {
    // Start every needed stage at once: each waits only for the stages it reads.
    for (const s of this.o.graph.stages) void this.stage(s.index).catch(() => {});
    let state: StageState;
    try {
      state = await this.stage(this.o.graph.target);
      await Promise.allSettled([...this.results.values()]);
    } catch (e) {
      // Keep what the steps before the failure made (their layers and cache records), unless the
      // build is being interrupted: then the next Store.open cleans up.
      if (!this.o.signal.aborted) {
        await Promise.allSettled([...this.results.values()]);
        await this.layers.finish().catch(() => {});
      }
      throw e;
    }
    if (!adoptLater) await this.layers.finish();
    else
      await this.layers.settle().catch(async (e: unknown) => {
        // A layer failed: the others adopted (the failed one's diff removed) before the build fails, as in finish().
        await this.layers.adopt().catch(() => {});
        throw e;
      });
    return {
      ...state,
      layers: await Promise.all(state.layers.map((l) => (isPending(l) ? l.layer : Promise.resolve(l)))),
    };
  }

  stage(index: number): Promise<StageState> {
    let p = this.results.get(index);
    if (!p) {
      const stage = this.o.graph.stages.find((s) => s.index === index);
      if (!stage) return Promise.reject(new BuildError(`internal: stage ${index} is not in the graph`));
      p = this.runStage(stage);
      this.results.set(index, p);
    }
    return p;
  }

  stageName(stage: Stage): string {
    return stage.name ?? `stage-${stage.index}`;
  }

  private async runStage(stage: Stage): Promise<StageState> {
    const total = stage.steps.length + 1;
    const name = this.stageName(stage);
    const from = stage.from;
    const base = from.type === 'image' ? from.ref : from.type === 'stage' ? this.stageNameOf(from.stage) : 'scratch';
    const fromLabel = `[${name} 1/${total}] FROM ${base}`;
    let state = await baseState(this, this.o, stage, fromLabel);
    if (stage.from.type !== 'stage') for (const l of state.layers) if (!isPending(l)) this.o.onLayer?.(stage.index, l);
    for (const [i, step] of stage.steps.entries()) {
      this.o.signal.throwIfAborted();
      this.layers.check();
      const label = `[${name} ${i + 2}/${total}] ${oneLine(step.source)}`;
      state = await this.runOne(stage, i, step, state, label);
    }
    return state;
  }

  /**
   * Whether a stage (already built) ran any step in this build, or stands on a stage that did:
   * its content may differ from the last build's even where its keys below are the same.
   */
  rebuilt(index: number): boolean {
    const stage = this.o.graph.stages.find((s) => s.index === index);
    if (!stage) return false;
    const name = this.stageName(stage);
    if (this.explain.some((r) => r.stage === name && (r.status === 'miss' || r.status === 'no-cache'))) return true;
    return stage.from.type === 'stage' && this.rebuilt(stage.from.stage);
  }

  stageNameOf(index: number): string {
    const s = this.o.graph.stages.find((x) => x.index === index);
    return s ? this.stageName(s) : `stage-${index}`;
  }

  private async runOne(stage: Stage, index: number, step: Step, state: StageState, label: string): Promise<StageState> {
    const image = stepConfig(state.config.image);
    const history = image.history;
    const next: StageState = {
      ...state,
      config: { image, cmdSet: state.config.cmdSet },
      layers: [...state.layers],
      label,
    };
    if (!isFilesystemStep(step)) {
      applyStep(next.config, step);
      // As in BuildKit, metadata steps do not touch the key chain: a changed LABEL re-runs nothing.
      // Filesystem steps name what they read of the config (env, user, workdir, shell) themselves.
      // ONBUILD only adds to the config: BuildKit writes no history entry for it.
      if (step.kind !== 'onbuild')
        history.push({
          created: next.created,
          created_by: historyText(step),
          comment: 'buildkit.dockerfile.v0',
          empty_layer: true,
        });
      this.explain.push({ ...this.row(stage, index + 1, label, oneLine(step.source)), status: 'metadata' });
      return next;
    }

    const handle = this.o.reporter.step(label);
    try {
      const kb = new KeyBuilder().addDigest(`parent:${state.keyLabel}`, state.key.replace(/^sha256:/, ''));
      const exec = await this.prepare(stage.index, step, next, kb);
      if (readsContext(step)) this.contextReaders--;
      const key = kb.key();
      trace(`${label}: key computed`);
      // For --explain (explain-records.ts): the key this step had last time.
      const pointerKey = pointerId(this.o.identity, this.stageName(stage), index);
      const pointer = (await this.o.store.cache.get(pointerKey))?.value as { key: string } | undefined;

      let record: StepRecord | undefined;
      let hit: { value: unknown } | undefined;
      let made: StageLayer | null = null;
      let ran = false;
      const noCache =
        (this.o.noCache || (this.o.noCacheStages?.has(stage.index) ?? false)) && !this.o.ranKeys?.has(key);
      if (!noCache) {
        hit = await this.o.store.cache.get(key);
        // A record from --cache-from serves this build only: it is never written to the store's cache.
        record = hit ? (hit.value as StepRecord) : this.o.cacheFrom?.record(key);
        if (record?.layer && !(await this.o.store.blobs.has(record.layer.digest))) {
          // A record imported from a registry cache comes without its layer: fetch it (--cache-from).
          // A dry run fetches nothing: the layer counts when the registry cache lists it.
          const layer = record.layer;
          const found = this.o.dryRun
            ? (this.o.cacheFrom?.canFetch(layer.digest) ?? false)
            : await this.o.cacheFrom?.fetchLayer(layer);
          if (!found) record = undefined;
        }
      }
      const row = { ...this.row(stage, index + 1, label, oneLine(step.source)), key };
      if (record) {
        // The record's last use, for `tsbuild cache prune --filter until=` (a dry run uses nothing).
        if (hit && !this.o.dryRun) this.o.store.cache.touch(key);
        handle.cached();
        this.explain.push({ ...row, status: 'hit', ...(kb.hitNote && { reason: kb.hitNote }) });
      } else {
        await kb.beforeInputs?.();
        const previous =
          noCache || !pointer
            ? undefined
            : ((await this.o.store.cache.get(inputsId(pointer.key)))?.value as { inputs: Inputs } | undefined);
        // Nothing to compare with (no earlier build): the inputs, a record per file of a copied tree, are spelled
        // out only when written after the step, not held while it stages and writes its layer.
        const flag = noCache ? (this.o.noCache ? '--no-cache' : '--no-cache-filter') : undefined;
        this.explain.push({ ...row, ...missNote(flag, previous?.inputs, () => kb.inputs, state) });
        if (this.o.dryRun) {
          handle.done();
          if (step.kind === 'workdir') applyStep(next.config, step);
          return { ...next, key, keyLabel: label, missed: true };
        }
        made = await exec(handle);
        ran = true;
        this.o.ranKeys?.add(key);
        const created = epochOr(this.o.sourceDateEpoch, new Date().toISOString());
        // Only --explain reads the inputs (and the pointer below): they are written while the next
        // step runs (for a COPY of 20,000 files the inputs are megabytes to write and fsync).
        this.layers.track(saveInputs(this.o.store, this.o.context.dir, key, kb.inputParts()));
        if (made && isPending(made)) {
          // The record names the layer's blob: it is written once the blob is in the store.
          const pending = made;
          const below = [...state.layers];
          this.layers.track(
            pending.layer.then(async (layer) => {
              const value: StepRecord = { layer, created, step: label };
              // The record keeps the layer's snapshot too (its ChainID names the layers under it).
              const under = await Promise.all(below.map((l) => (isPending(l) ? l.layer : Promise.resolve(l))));
              const snapshots = [chainID([...under.map((l) => l.diffID), layer.diffID])];
              await this.o.store.cache.put(key, { value, blobs: [layer.digest], snapshots });
              trace(`${label}: cache record written`);
              this.records.push({ stage: stage.index, key: key, value });
            }),
          );
          record = { layer: null, created };
        } else {
          record = { layer: made, created, step: label };
          await this.o.store.cache.put(key, { value: record, blobs: made ? [made.digest] : [] });
        }
        handle.done();
      }
      if (this.o.dryRun) {
        // A hit: the state a build would go on from, nothing written (not even the --explain pointer).
        if (record.layer) next.layers.push(record.layer);
        if (step.kind === 'workdir') applyStep(next.config, step);
        return { ...next, key, keyLabel: label, created: record.created };
      }
      if (pointer?.key !== key) this.layers.track(this.o.store.cache.put(pointerKey, { value: { key }, blobs: [] }));
      if (!made || !isPending(made)) this.records.push({ stage: stage.index, key: key, value: record });
      if (step.kind === 'workdir') applyStep(next.config, step);
      next.key = key;
      next.keyLabel = label;
      if (ran) next.missed = true;
      next.created = record.created;
      const layer = made ?? record.layer;
      if (layer) next.layers.push(layer);
      // A new layer was said as it was written (commit.ts); a hit's is said here.
      if (layer && !isPending(layer)) this.o.onLayer?.(stage.index, layer);
      history.push({
        created: record.created,
        created_by: historyText(step),
        comment: 'buildkit.dockerfile.v0',
        ...(layer ? {} : { empty_layer: true }),
      });
      return next;
    } catch (e) {
      handle.fail(e instanceof BuildError ? e.message.split('\n')[0] : String((e as Error).message ?? e));
      throw e;
    }
  }

  /** The parts of a report row every step has; `index` counts from 0 for FROM. */
  row(stage: Stage, index: number, label: string, instruction: string) {
    return { stage: this.stageName(stage), index: index + 1, instruction, label };
  }

  /** Adds the step's inputs to the key and returns how to execute it on a miss. */
  private async prepare(
    stage: number,
    step: RunStep | CopyStep | WorkdirStep,
    state: StageState,
    kb: KeyBuilder,
  ): Promise<Exec> {
    const ctx: StepContext = { stages: this, stage, opts: this.o, state, fs: this.fs };
    switch (step.kind) {
      case 'run':
        return runStep(ctx, step, kb);
      case 'workdir':
        return workdirStep(ctx, step, kb);
      default:
        return copyStep(ctx, step, kb);
    }
  }

  /** The final image config for a stage's state. */
  finalConfig(state: SettledState): ImageConfig {
    const image = structuredClone(state.config.image);
    image.created = state.created;
    image.rootfs = { type: 'layers', diff_ids: state.layers.map((l) => l.diffID) };
    return image;
  }
}

function isFilesystemStep(step: Step): step is RunStep | CopyStep | WorkdirStep {
  return step.kind === 'run' || step.kind === 'copy' || step.kind === 'add' || step.kind === 'workdir';
}

/** COPY and ADD (whatever their source: counted alike), RUN with a bind mount. */
function readsContext(step: Step): boolean {
  return (
    step.kind === 'copy' || step.kind === 'add' || (step.kind === 'run' && step.mounts.some((m) => m.type === 'bind'))
  );
}

function oneLine(s: string): string {
  const line = s
    .replace(/\\\r?\n/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return line.length > 120 ? line.slice(0, 117) + '...' : line;
}
