// The state a stage carries from step to step.
import type { Layer } from '@tsbuild/layerstore';
import type { StageConfig } from '../image/config.js';
import type { StageLayer } from '../rootfs/layers.js';
import type { Change } from './cachekey.js';

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
  /** An image stage's base: its ref and the key it gives (while `key` is that key, the step above is FROM). */
  base?: { ref: string; key: string };
  /** A step of this stage (or of the stages it is FROM) missed in this build: what follows runs too. */
  missed?: boolean;
}

/** A stage's state once every layer of it is in the store. */
export type SettledState = Omit<StageState, 'layers'> & { layers: Layer[] };

/** One step of a build (or a dry run) as --explain reports it; the JSON form is docs/explain.md. */
export interface ExplainRow {
  stage: string;
  /** The step's position in its stage, FROM being 1 (as in the label "[app 2/5]"). */
  index: number;
  /** The instruction on one line ("COPY . /app"). */
  instruction: string;
  label: string;
  status: 'hit' | 'miss' | 'metadata' | 'base' | 'no-cache';
  reason?: string;
  /** The filesystem step's cache key. */
  key?: string;
  /** A miss: the first input that changed (see cachekey.ts findChange). */
  change?: Change;
  /** A miss on a file: the npm manifests (package.json, lockfiles) the step read, as content digests (hex). */
  npm?: { path: string; before: string | null; after: string | null }[];
  /** A base image: the reference as written and the manifest digest it resolved to (none for scratch). */
  base?: { ref: string; digest: string | null };
}
