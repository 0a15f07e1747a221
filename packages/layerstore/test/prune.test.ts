// prune: mark from tags, cache records and leases; sweep the rest; keep fresh things and live temp.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { sampleImage, sha, tempStore } from './storekit.js';
import { MediaType } from '../src/types.js';
import { hostPlatform } from '../src/platform.js';

test('prune removes only what nothing reaches; respects the grace period; cleans dead temp', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const tagged = await sampleImage(store);
    await store.images.tag('keep:1', tagged);
    const cached = await store.blobs.put('cached layer');
    await store.cache.put(cached.digest, { value: 1, blobs: [cached.digest] });
    // A container's lease lives as long as its directory.
    const inContainer = await store.blobs.put('{"container image":1}');
    await fsp.mkdir(join(store.root, 'owners', 'c1'), { recursive: true });
    await store.leases.forPath('container-c1', 'owners/c1', 'container').reuse('blob', inContainer.digest);
    const garbage = await store.blobs.put('garbage');
    const removedTag = await sampleImage(store, 'docker');
    await store.images.tag('gone:1', removedTag);
    await store.tags.delete('gone:1');
    // A dead process's leftovers and a live one's.
    await fsp.writeFile(join(store.tmpDir, 'ingest-999999_12345_abcdefabcdef'), 'x');
    const live = await store.tempDir('upper');

    // Fresh garbage survives the default grace period.
    let r = await store.prune();
    assert.is(r.blobs, 0);
    assert.ok(await store.blobs.has(garbage.digest));
    assert.is(r.temp, 1, 'dead owner temp removed');
    await fsp.stat(live);

    r = await store.prune({ gracePeriodMs: 0 });
    assert.not.ok(await store.blobs.has(garbage.digest));
    assert.not.ok(await store.blobs.has(removedTag.manifestDigest));
    for (const d of [
      tagged.manifestDigest,
      tagged.configDigest,
      ...tagged.layers.map((l) => l.digest),
      cached.digest,
      inContainer.digest,
    ])
      assert.ok(await store.blobs.has(d), d);
    // The docker variant shares layers and config with the tagged image: only its manifest goes.
    assert.is(r.blobs, 2);
    // A cache record whose blob is gone is dangling and is dropped.
    await store.cache.put(sha('dangling key'), { value: 2, blobs: [garbage.digest] });
    r = await store.prune({ gracePeriodMs: 0 });
    assert.is(r.cacheRecords, 1);
    assert.is((await store.cache.list()).length, 1);
    assert.is((await store.images.get('keep:1'))?.manifestDigest, tagged.manifestDigest);
    // Without its directory the container's lease has expired: its blob goes, and the lease file too.
    await fsp.rm(join(store.root, 'owners', 'c1'), { recursive: true });
    r = await store.prune({ gracePeriodMs: 0 });
    assert.is(r.leases, 1);
    assert.not.ok(await store.blobs.has(inContainer.digest));
    assert.equal(await fsp.readdir(store.leases.dir), []);
  } finally {
    await cleanup();
  }
});

// A tag names a registry's index with only the platforms pulled in the store (containerd's way): prune
// keeps the index and every platform's image that is there; the entry never pulled is simply absent.
test('prune keeps a partly pulled index under its tag, and the images of its platforms that are present', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const here = await sampleImage(store);
    const absent = sha('an arm64 manifest never pulled');
    const other = hostPlatform().architecture === 'arm64' ? 'amd64' : 'arm64';
    const index = await store.blobs.put(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [
          {
            mediaType: MediaType.OciManifest,
            digest: absent,
            size: 500,
            platform: { os: 'linux', architecture: other },
          },
          {
            mediaType: MediaType.OciManifest,
            digest: here.manifestDigest,
            size: (await store.blobs.size(here.manifestDigest))!,
            platform: hostPlatform(),
          },
        ],
      }),
    );
    await store.images.tagDescriptor('multi:1', { mediaType: MediaType.OciIndex, ...index });
    await store.blobs.put('garbage');
    const r = await store.prune({ gracePeriodMs: 0 });
    assert.is(r.blobs, 1, 'only the garbage goes');
    for (const d of [index.digest, here.manifestDigest, here.configDigest, ...here.layers.map((l) => l.digest)])
      assert.ok(await store.blobs.has(d), d);
    assert.is((await store.images.get('multi:1'))?.manifestDigest, here.manifestDigest);
    await store.images.get('multi:1', { os: 'linux', architecture: other }).then(
      () => assert.unreachable(`an image for linux/${other} was found`),
      (e: Error) => assert.match(e.message, /not in the store/),
    );
  } finally {
    await cleanup();
  }
});

test('dropCache: the records a selector picks are dropped, but never one a live lease holds', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const keys = ['a', 'b', 'held'].map((k) => sha(`key ${k}`));
    for (const k of keys) await store.cache.put(k, { value: { created: 'x', layer: null }, blobs: [] });
    // A running build holds the third record (it read it: a cache hit).
    await fsp.mkdir(join(store.root, 'owners', 'b1'), { recursive: true });
    await store.leases.forPath('build-b1', 'owners/b1', 'build').reuse('cache', keys[2]);
    let seen: string[] = [];
    const r = await store.prune({
      gracePeriodMs: 0,
      dropCache: async (records) => {
        seen = records.map((x) => x.key).sort();
        return [keys[0], keys[2]];
      },
    });
    assert.equal(seen, [...keys].sort(), 'the selector sees every listed record');
    assert.is(r.cacheRecords, 1);
    assert.equal((await store.cache.list()).map((x) => x.key).sort(), [keys[1], keys[2]].sort());
  } finally {
    await cleanup();
  }
});

test.run();
