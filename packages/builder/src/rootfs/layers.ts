// The layers of a stage: in the store, or still being written with their diff already usable.
// Filesystems (below) stacks them as lowerdirs; the solver's stage state carries them.
import type { Layer } from '@tsbuild/layerstore';

/**
 * A layer of a stage being built whose blob is still being written (in the background, see
 * solver/ops/commit.ts): its diff is already usable, as a lowerdir, by the steps after it.
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
