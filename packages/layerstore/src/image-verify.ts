// Whether everything an image (or index) needs is in the store, before a tag may name it.
import { isDigest } from './fsutil.js';
import { isIndexMediaType } from './image-read.js';
import type { OciIndex } from './tags.js';
import type { BlobStore, Descriptor, Digest, ImageConfig, Manifest } from './types.js';

/** What is wrong with an image in the store (Images.verify): empty lists mean nothing. */
export interface ImageDamage {
  missing: Digest[];
  problems: string[];
}

/**
 * Walk everything a manifest or index descriptor needs (manifests, configs, layers; of an index, the
 * platforms that are in the store) and say what is missing or wrong: sizes against descriptors, JSON,
 * diff_ids against layers. With a lease, each blob is leased before it is looked at (BlobStore.has), so
 * what was found stays. Blob contents were verified when they were committed; `tsbuild check` re-hashes
 * them.
 */
export async function verifyImage(blobs: BlobStore, desc: Descriptor): Promise<ImageDamage> {
  const damage: ImageDamage = { missing: [], problems: [] };
  const present = async (d: Descriptor, what: string): Promise<boolean> => {
    if (!isDigest(d.digest)) {
      damage.problems.push(`${what} has no valid digest (${JSON.stringify(d.digest)})`);
      return false;
    }
    if (!(await blobs.has(d.digest))) {
      damage.missing.push(d.digest);
      return false;
    }
    const size = await blobs.size(d.digest);
    if (typeof d.size === 'number' && d.size > 0 && size !== undefined && size !== d.size) {
      damage.problems.push(`${what} ${d.digest} is ${size} bytes in the store, its descriptor says ${d.size}`);
    }
    return true;
  };
  const json = async <T>(d: Digest, what: string): Promise<T | undefined> => {
    try {
      return await blobs.readJSON<T>(d);
    } catch (e) {
      damage.problems.push(`${what} ${d}: ${(e as Error).message}`);
      return undefined;
    }
  };
  // Index or manifest is decided by the content, as prune's mark does, not by the descriptor.
  const visit = async (d: Descriptor, depth: number): Promise<void> => {
    if (!(await present(d, isIndexMediaType(d.mediaType) ? 'index' : 'manifest'))) return;
    const doc = await json<Partial<OciIndex> & Partial<Manifest>>(d.digest, 'manifest');
    if (!doc) return;
    if (Array.isArray(doc.manifests)) {
      if (depth > 4) return void damage.problems.push(`index ${d.digest} nests indexes too deep`);
      // An entry not in the store is a platform never pulled (containerd keeps a pulled index so, under
      // its tag): only the entries that are here must be whole, and one at least must be.
      const here = [];
      for (const m of doc.manifests) if (!isDigest(m?.digest) || (await blobs.has(m.digest))) here.push(m);
      if (!here.length && doc.manifests.length) damage.missing.push(...doc.manifests.map((m) => m.digest));
      for (const m of here) await visit(m, depth + 1);
      return;
    }
    if (!doc.config || !Array.isArray(doc.layers)) {
      return void damage.problems.push(`manifest ${d.digest} is neither an image manifest nor an index`);
    }
    for (const [i, l] of doc.layers.entries()) await present(l, `layer ${i + 1}`);
    if (!(await present(doc.config, 'config'))) return;
    const config = await json<ImageConfig>(doc.config.digest, 'config');
    const diffIDs = config?.rootfs?.diff_ids;
    if (config && Array.isArray(diffIDs) && diffIDs.length !== doc.layers.length) {
      const counts = `${diffIDs.length} diff_ids but manifest ${d.digest} has ${doc.layers.length} layers`;
      damage.problems.push(`config ${doc.config.digest} lists ${counts}`);
    }
  };
  await visit(desc, 0);
  return damage;
}
