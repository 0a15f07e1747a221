// Orderings between prune (or check --repair) and a writer that the lease protocol must survive, made
// deterministic: a second Store on the same root is the writer, and it acts at a chosen point inside
// prune or check (a wrapped method of the pruning store). Each row failed before its fix.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../src/store.js';
import { check } from '../src/check.js';
import type { Digest } from '../src/types.js';
import { addLayer, sampleImage, sha, tempStore } from './storekit.js';

/** Commit bytes through an ingest (no has/touch first: a layer a build has just written). */
async function ingest(store: Store, bytes: string): Promise<Digest> {
  const w = store.blobs.ingest();
  await new Promise<void>((resolve, reject) => {
    w.on('error', reject);
    w.end(Buffer.from(bytes), () => resolve());
  });
  return (await w.commit()).digest;
}

/** Resolves when the writer starts waiting for prune's sweep to end (the lease protocol's wait). */
function waitsForSweep(writer: Store): Promise<'waits'> {
  const settled = writer.leases.settled.bind(writer.leases);
  return new Promise((resolve) => {
    writer.leases.settled = () => {
      resolve('waits');
      return settled();
    };
  });
}

test('a record written after the listing, by a writer gone before the leases are read, keeps its content', async () => {
  const { store, cleanup } = await tempStore();
  const writer = await Store.open(store.root);
  try {
    const key = sha('a step');
    let blob: Digest | undefined;
    const chain = sha('its chain');
    // Right after prune has listed the records: a whole build happens and ends (its lease dropped).
    const list = store.cache.list.bind(store.cache);
    store.cache.list = async () => {
      const out = await list();
      await writer.beginLease('build');
      blob = await ingest(writer, 'a layer only the cache keeps');
      const dir = await writer.tempDir('snap');
      await fsp.writeFile(join(dir, 'f'), 'x');
      await writer.snapshots.adopt(chain, dir);
      await writer.cache.put(key, { value: 1, blobs: [blob], snapshots: [chain] });
      writer.endLease();
      return out;
    };
    const r = await store.prune({ gracePeriodMs: 0 });
    assert.equal([r.blobs, r.snapshots, r.cacheRecords], [0, 0, 0]);
    assert.ok(await store.cache.get(key));
    assert.ok(await store.blobs.has(blob!), 'the record keeps its blob');
    assert.ok(await store.snapshots.get(chain), 'the record keeps its snapshot');
  } finally {
    await cleanup();
  }
});

test('a blob committed again while prune decides on its old copy is not unlinked under the writer', async () => {
  const { store, cleanup } = await tempStore();
  const writer = await Store.open(store.root);
  try {
    // An unreferenced blob, about to be pruned, that a build is about to write again (same bytes).
    const old = await store.blobs.put('a layer made again');
    await writer.beginLease('build');
    const waiting = waitsForSweep(writer);
    let commit: Promise<Digest> | undefined;
    const live = store.leases.live.bind(store.leases);
    store.leases.live = async () => {
      const out = await live(); // prune has read the leases: the writer's entry comes after
      commit = ingest(writer, 'a layer made again');
      // Either the commit waits for the sweep (the protocol) or it completes under prune.
      await Promise.race([commit, waiting]);
      return out;
    };
    await store.prune({ gracePeriodMs: 0 });
    assert.is(await commit, old.digest);
    assert.ok(await store.blobs.has(old.digest), 'a committed blob is in the store');
  } finally {
    writer.endLease();
    await cleanup();
  }
});

test('a record written again while prune --all decides is not deleted under the writer', async () => {
  const { store, cleanup } = await tempStore();
  const writer = await Store.open(store.root);
  try {
    const key = sha('a step');
    await store.cache.put(key, { value: 'old', blobs: [] });
    await writer.beginLease('build');
    const waiting = waitsForSweep(writer);
    let put: Promise<void> | undefined;
    const del = store.cache.delete.bind(store.cache);
    store.cache.delete = async (k: Digest) => {
      if (!put) {
        put = writer.cache.put(key, { value: 'new', blobs: [] });
        await Promise.race([put, waiting]);
      }
      return del(k);
    };
    await store.prune({ gracePeriodMs: 0, allCache: true });
    await put;
    assert.equal((await store.cache.get(key))?.value, 'new', 'the record the writer wrote is there');
  } finally {
    writer.endLease();
    await cleanup();
  }
});

test('check --repair does not remove a tag that was pointed at a whole image while it was being checked', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const good = await sampleImage(store);
    const layer = await addLayer(store, [{ name: 'only-here', content: 'x' }]);
    const config = { ...good.config, rootfs: { type: 'layers' as const, diff_ids: [layer.diffID] } };
    const bad = await store.images.write({ config, layers: [layer] });
    await store.images.tag('app:1', bad);
    await fsp.unlink(store.blobs.path(bad.layers[0].digest));
    const goodDesc = await store.images.descriptor(good);
    // While check looks at the broken image, a build tags app:1 with a whole one.
    const verify = store.images.verify.bind(store.images);
    let retagged = false;
    store.images.verify = async (desc) => {
      const damage = await verify(desc);
      if (!retagged && desc.digest === bad.manifestDigest) {
        retagged = true;
        await store.images.tagDescriptor('app:1', goodDesc);
      }
      return damage;
    };
    const rep = await check(store, { repair: true });
    assert.ok(retagged);
    assert.is((await store.tags.get('app:1'))?.digest, good.manifestDigest, rep.repaired.join('\n'));
  } finally {
    await cleanup();
  }
});

test.run();
