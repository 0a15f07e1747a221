// The state a stage carries from step to step.
import type { Layer } from '@tsbuild/layerstore';
import type { StageConfig } from './config.js';

export interface StageState {
  config: StageConfig;
  layers: Layer[];
  /** Cache key of the last step (or of the base). */
  key: string;
  /** A human label of the last step ("[app 2/5] COPY . /app"). */
  label: string;
  /** The label of the step that made `key`: metadata steps leave the key alone. */
  keyLabel: string;
  /** When the content of the last filesystem step was made: keeps cached rebuilds byte-identical. */
  created: string;
}

export interface ExplainRow {
  stage: string;
  label: string;
  status: 'hit' | 'miss' | 'metadata' | 'base' | 'no-cache';
  reason?: string;
}
