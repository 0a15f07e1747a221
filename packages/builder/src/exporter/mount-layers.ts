// Cache mounts that travel (--cache-to ...,mounts=ID; exporter/cache-share.ts): a mount's content is a
// chain of layers in the cache artifact. A build that restored the chain exports only what changed since
// (a new layer on top: new and changed entries, whiteouts for what was removed); a build that did not, or
// whose chain is long, exports the whole directory as one layer. Directories are walked with the layer
// codec's lstat walk (entriesFromDirectory): what RUN steps wrote there is untrusted, no link is followed.
import { entriesFromDirectory, writeLayer } from '@tsbuild/layerstore/layer';
import type { Entry } from '@tsbuild/layerstore/layer';
import type { Layer, Store } from '@tsbuild/layerstore';

/** Past this many layers, the next export starts over with one layer (restoring stays cheap). */
export const MaxMountLayers = 8;

/** What a restored cache mount held right after its layers were unpacked: path -> signature. */
export type MountListing = Map<string, string>;

/** An entry's metadata as the restore left it; a file whose signature is unchanged is not exported again. */
function signature(e: Entry): string {
  return `${e.type}:${e.mode}:${e.uid}:${e.gid}:${e.mtime}:${e.size ?? ''}:${e.linkname ?? ''}`;
}

export async function listMount(dir: string): Promise<MountListing> {
  const out: MountListing = new Map();
  for await (const e of entriesFromDirectory(dir)) out.set(e.path, signature(e));
  return out;
}

/**
 * The layers that make up the mount now: the restored chain plus a layer of what changed since (none when
 * nothing did), or the whole directory as one layer when there is no restored chain or it is at its limit.
 */
export async function mountLayers(
  store: Store,
  dir: string,
  restored: { layers: Layer[]; listing: MountListing } | undefined,
): Promise<Layer[]> {
  if (!restored || restored.layers.length >= MaxMountLayers)
    return [await writeLayer(store.blobs, dir, { compression: 'gzip' })];
  const seen = new Set<string>();
  const entries: Entry[] = [];
  let changed = 0;
  for await (const e of entriesFromDirectory(dir)) {
    seen.add(e.path);
    const same = restored.listing.get(e.path) === signature(e);
    // Directories always (metadata only): a changed file's parents must be in its layer.
    if (e.type === 'directory' || !same) entries.push(e);
    if (!same) changed++;
  }
  const gone = [...restored.listing.keys()].filter((p) => !seen.has(p));
  const goneSet = new Set(gone);
  for (const path of gone) {
    const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    if (parent && goneSet.has(parent)) continue; // the parent's whiteout covers it
    entries.push({ path, type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: 0 });
    changed++;
  }
  if (changed === 0) return restored.layers;
  return [...restored.layers, await writeLayer(store.blobs, entries, { compression: 'gzip' })];
}
