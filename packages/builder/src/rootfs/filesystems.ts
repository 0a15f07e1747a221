// Turns a stage's layers into what steps need: overlay lowerdirs for the sandbox and a
// read-only view for reading files, both backed by the store's snapshots.
import { flattenInto, RootView } from '@tsbuild/sandbox';
import { isOpaque, type Store } from '@tsbuild/layerstore';
import { isPending, type PendingLayer, type StageLayer } from './layers.js';

export class Filesystems {
  /**
   * Whether a layer's directory is opaque, by host path, for this build: a layer directory (a snapshot, or a
   * finished step's diff) never changes once a view can name it, and each look is an xattr read through ffi.
   * Every COPY of a stage looked at the same directories of every layer below it again (`/`, and its dest's
   * parents): O(layers) reads per step, O(steps²) per stage; the final stage of 16 parallel stages, 16
   * COPY --from each into /out, made ~800 of them (~15 ms) in a build where one stage changed.
   */
  private readonly opaque = new Map<string, boolean>();
  private readonly isOpaque = (dir: string): boolean => {
    let known = this.opaque.get(dir);
    if (known === undefined) this.opaque.set(dir, (known = isOpaque(dir)));
    return known;
  };

  constructor(private readonly store: Store) {}

  /**
   * Snapshot dirs, top first, unpacking any layer not yet unpacked. Layers still being written
   * at the top of the stack are used from their diff dirs. One below a layer from the store (a
   * cache hit above a miss) is waited for: the snapshots above it are named by its diffID.
   */
  async lowerdirs(layers: readonly StageLayer[]): Promise<string[]> {
    if (layers.length === 0) return [];
    let top = layers.length;
    while (top > 0 && isPending(layers[top - 1])) top--;
    const below = await Promise.all(layers.slice(0, top).map((l) => (isPending(l) ? l.layer : Promise.resolve(l))));
    const { lowerdirs } = await this.store.snapshotter.view(below);
    return [
      ...layers
        .slice(top)
        .map((l) => (l as PendingLayer).dir)
        .reverse(),
      ...lowerdirs,
    ];
  }

  async view(layers: readonly StageLayer[]): Promise<RootView> {
    return this.viewOf(await this.lowerdirs(layers));
  }

  /** The read-only view of lowerdirs got from lowerdirs() (a step that needs both asks the store once). */
  viewOf(lowerdirs: string[]): RootView {
    return new RootView(lowerdirs, this.isOpaque, true);
  }

  async flatten(layers: readonly StageLayer[], from: string, dest: string): Promise<void> {
    await flattenInto(await this.view(layers), from, dest);
  }
}
