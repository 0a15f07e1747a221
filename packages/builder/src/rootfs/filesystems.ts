// Turns a stage's layers into what steps need: overlay lowerdirs for the sandbox and a
// read-only view for reading files, both backed by the store's snapshots.
import { promises as fsp, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import type { Store } from '@tsbuild/layerstore';
import { getXattr } from '@tsbuild/layerstore/layer';
import { isPending, type PendingLayer, type StageLayer } from './layers.js';
import { RootView } from './rootview.js';

export function isOpaque(dir: string): boolean {
  return getXattr(dir, 'trusted.overlay.opaque')?.toString() === 'y';
}

export class Filesystems {
  constructor(private readonly store: Store) {}

  /**
   * Snapshot dirs, top first, unpacking any layer not yet unpacked. Layers still being written
   * at the top of the stack are used from their diff dirs. One below a layer from the store (a
   * cache hit above a miss) is waited for: the snapshots above it are named by its diffID.
   */
  async lowerdirs(layers: readonly StageLayer[]): Promise<string[]> {
    if (layers.length === 0) return [];
    let top = layers.length;
    while (top > 0 && isPending(layers[top - 1]!)) top--;
    const below = await Promise.all(layers.slice(0, top).map((l) => (isPending(l) ? l.layer : l)));
    const snaps = top > 0 ? await this.store.snapshots.ensure(below) : [];
    return [...snaps.map((s) => s.path), ...layers.slice(top).map((l) => (l as PendingLayer).dir)].reverse();
  }

  async view(layers: readonly StageLayer[]): Promise<RootView> {
    return new RootView(await this.lowerdirs(layers), isOpaque);
  }

  async flatten(layers: readonly StageLayer[], from: string, dest: string): Promise<void> {
    await flattenInto(await this.view(layers), from, dest);
  }
}

/** Copies a directory of a layer stack, whiteouts applied, into a plain directory. */
export async function flattenInto(view: RootView, from: string, dest: string): Promise<void> {
  const top = await view.stat(from);
  if (!top) throw new Error(`${from} not found`);
  const copy = async (path: string, host: string, st: Stats, out: string) => {
    if (st.isDirectory()) {
      await fsp.mkdir(out, { recursive: true });
      for (const name of await view.readdir(path)) {
        const e = await view.lstatCanonical(posix.join(path, name));
        if (e) await copy(e.path, e.host, e.stat, join(out, name));
      }
      await fsp.chmod(out, st.mode & 0o7777);
      await fsp.chown(out, st.uid, st.gid);
    } else if (st.isSymbolicLink()) {
      await fsp.symlink(await fsp.readlink(host), out);
      await fsp.lchown(out, st.uid, st.gid);
    } else if (st.isFile()) {
      await fsp.copyFile(host, out);
      await fsp.chmod(out, st.mode & 0o7777);
      await fsp.chown(out, st.uid, st.gid);
    }
  };
  await copy(top.path, top.host, top.stat, dest);
}
