// The state a stage carries from step to step.
import type { Layer } from '@tsbuild/layerstore';
import type { StageConfig } from './config.js';

/**
 * A layer of a stage being built whose blob is still being written (in the background, see
 * steps/commit.ts): its diff is already usable, as a lowerdir, by the steps after it.
 */
export interface PendingLayer {
  /** The diff, in overlay lowerdir form; it becomes the layer's snapshot when the build ends. */
  readonly dir: string;
  /** Settles when the blob is in the store. */
  readonly layer: Promise<Layer>;
}

export type StageLayer = Layer | PendingLayer;

export function isPending(l: StageLayer): l is PendingLayer {
  return 'dir' in l && 'layer' in l;
}

export interface StageState {
  config: StageConfig;
  layers: StageLayer[];
  /** Cache key of the last step (or of the base). */
  key: string;
  /** A human label of the last step ("[app 2/5] COPY . /app"). */
  label: string;
  /** The label of the step that made `key`: metadata steps leave the key alone. */
  keyLabel: string;
  /** When the content of the last filesystem step was made: keeps cached rebuilds byte-identical. */
  created: string;
}

/** A stage's state once every layer of it is in the store. */
export type SettledState = Omit<StageState, 'layers'> & { layers: Layer[] };

export interface ExplainRow {
  stage: string;
  label: string;
  status: 'hit' | 'miss' | 'metadata' | 'base' | 'no-cache';
  reason?: string;
}
