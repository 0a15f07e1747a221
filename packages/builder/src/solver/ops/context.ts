// What an op (RUN, COPY/ADD, WORKDIR) is handed: its stage's state, the build's filesystems helper,
// the options it reads, and of the solver only what it asks of it (another stage's result, the layer
// queue). The solver imports the ops; the ops do not import the solver.
import type { Image, Layer, Store } from '@tsbuild/layerstore';
import type { PrivateNetwork, Rlimit } from '@tsbuild/sandbox';
import type { StageState } from '../state.js';
import type { StageLayer } from '../../rootfs/layers.js';
import type { StepHandle } from '../../progress/index.js';
import type { BuildContext } from '../../context/context.js';
import type { Filesystems } from '../../rootfs/filesystems.js';
import type { LayerQueue } from './layer-queue.js';

/** The build's options an op reads (SolveOptions extends this). */
export interface StepOptions {
  store: Store;
  context: BuildContext;
  /**
   * Base images resolved before the graph was built, for the target platform by the ref as written in
   * FROM; those of a FROM --platform naming another platform by `baseKey` (base-state.ts).
   */
  bases: Map<string, Image>;
  network: 'default' | 'none' | 'host';
  /** RUN steps may use the host's network (`--allow network.host`). */
  allowNetworkHost: boolean;
  /** The build's private network (the default for RUN steps), made on first use. */
  privateNetwork: () => Promise<PrivateNetwork>;
  secrets: Map<string, { file?: string; env?: string }>;
  /** `--ssh`: the host agent socket of each id (RUN --mount=type=ssh). */
  ssh?: Map<string, string>;
  sourceDateEpoch?: number;
  /** How new layers are stored: gzip (default, what every consumer reads), zstd, or none. */
  compression: 'gzip' | 'zstd' | 'none';
  signal: AbortSignal;
  /** --dry-run: an op adds its inputs to the key and reads no stage's files (its exec is never called). */
  dryRun?: boolean;
  /** --cache-from: fills an empty cache mount with the content an imported artifact carries for its id. */
  cacheFrom?: { restoreMount(id: string, dir: string): Promise<void> };
  /** `--add-host`, `--ulimit`, `--shm-size`: for every RUN step (part of its cache key when set). */
  run?: RunSettings;
  /**
   * Hears each layer a stage stands on or makes, once its blob is in the store: the base image's
   * when the stage starts (a stage FROM another stage has its parent's said by the parent), a
   * cache hit's at its step, a new one the moment it is written, before its step may have ended
   * (`build --push` uploads it then).
   */
  onLayer?: (stage: number, layer: Layer) => void;
}

export interface RunSettings {
  extraHosts: { host: string; ip: string }[];
  rlimits: Rlimit[];
  shmSize?: number;
}

/** What an op asks of the solver. */
export interface Stages {
  /** Another stage's result (COPY --from, RUN --mount from=), built if it was not yet. */
  stage(index: number): Promise<StageState>;
  stageNameOf(index: number): string;
  /** Whether a stage (already built) ran a step in this build, or stands on a stage that did. */
  rebuilt(index: number): boolean;
  /** Layers of this build still being written. */
  readonly layers: LayerQueue;
  /** A RUN's command has started: the build's own thread would only wait for it. */
  commandStarted(): void;
}

export interface StepContext {
  stages: Stages;
  /** The index of the step's stage. */
  stage: number;
  opts: StepOptions;
  state: StageState;
  fs: Filesystems;
}

/** What a filesystem step does on a cache miss: make its layer (usually still being written), or none (empty diff). */
export type Exec = (handle: StepHandle) => Promise<StageLayer | null>;
