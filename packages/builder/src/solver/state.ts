// The state a stage carries from step to step.
import type { Layer } from '@tsbuild/layerstore';
import type { StageConfig } from '../image/config.js';
import type { StageLayer } from '../rootfs/layers.js';

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
