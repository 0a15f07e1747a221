// The snapshotter's verbs, as RUN steps and containers use them: view (a layer stack's lowerdirs),
// prepare (an active snapshot), mounts (one prepared before; never made anew), commit (the upperdir's
// overlay diff as a layer: the same bytes as a RUN step's, exclusions, quiesced while read) and
// remove (beneath fds: a symlink left in the upperdir is never followed).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readTar, decompressLayer, writeLayer } from '../src/layer/index.js';
import { chainIDs } from '../src/snapshot/index.js';
import { setXattr } from '@tsbuild/sys';
import { StoreError, type Layer } from '../src/types.js';
import type { Store } from '../src/store.js';
import { addLayer, tempStore } from './storekit.js';

async function withStore(fn: (store: Store, dir: string) => Promise<void>): Promise<void> {
  const t = await tempStore();
  try {
    await fn(t.store, t.dir);
  } finally {
    await t.cleanup();
  }
}

async function names(store: Store, layer: Layer): Promise<string[]> {
  const out: string[] = [];
  for await (const { header } of readTar(decompressLayer(store.blobs.open(layer.digest), layer.mediaType)))
    out.push(header.name);
  return out;
}

/** An upperdir as overlayfs leaves it: a file, a whiteout (0/0 char device), an opaque dir. */
function fillUpper(upper: string): void {
  writeFileSync(join(upper, 'added'), 'added');
  execFileSync('mknod', [join(upper, 'gone'), 'c', '0', '0']);
  mkdirSync(join(upper, 'dir'));
  setXattr(join(upper, 'dir'), 'trusted.overlay.opaque', Buffer.from('y'));
  writeFileSync(join(upper, 'dir', 'new'), 'new');
  mkdirSync(join(upper, 'etc'));
  writeFileSync(join(upper, 'etc', 'hostname'), 'c1');
}

test('view: the snapshots of a layer stack, top first, unpacked on demand and named by ChainID', async () => {
  await withStore(async (store) => {
    const a = await addLayer(store, [{ name: 'a', content: 'a' }]);
    const b = await addLayer(store, [{ name: 'b', content: 'b' }]);
    const { lowerdirs, upperdir } = await store.snapshotter.view([a, b]);
    assert.equal(
      lowerdirs,
      chainIDs([a.diffID, b.diffID])
        .map((c) => store.snapshots.pathOf(c))
        .reverse(),
    );
    assert.is(upperdir, undefined);
    assert.is(readFileSync(join(lowerdirs[0], 'b'), 'utf8'), 'b');
    assert.equal(await store.snapshotter.view([]), { lowerdirs: [] });
  });
});

test('prepare: a fresh upperdir and workdir in key over the parent; a second prepare of the key fails', async () => {
  await withStore(async (store, dir) => {
    const a = await addLayer(store, [{ name: 'a', content: 'a' }]);
    const key = join(dir, 'c', 'one');
    const active = await store.snapshotter.prepare(key, [a]);
    assert.equal(active, {
      key,
      lowerdirs: (await store.snapshotter.view([a])).lowerdirs,
      upperdir: join(key, 'upper'),
      workdir: join(key, 'work'),
    });
    assert.ok(existsSync(active.upperdir) && existsSync(active.workdir));
    await store.snapshotter.prepare(key, [a]).then(
      () => assert.unreachable('prepared twice'),
      (e: NodeJS.ErrnoException) => assert.is(e.code, 'EEXIST'),
    );
    // Over mounts the caller has (a build's stage with layers still being written): taken as they are.
    const over = await store.snapshotter.prepare(join(dir, 'two'), { lowerdirs: ['/x', '/y'] });
    assert.equal(over.lowerdirs, ['/x', '/y']);
  });
});

test('mounts: an active snapshot prepared before keeps its upperdir; a removed one is not made anew', async () => {
  await withStore(async (store, dir) => {
    const a = await addLayer(store, [{ name: 'a', content: 'a' }]);
    const key = join(dir, 'ctr');
    const active = await store.snapshotter.prepare(key, [a]);
    writeFileSync(join(active.upperdir, 'kept'), 'x');
    const again = await store.snapshotter.mounts(key, [a]);
    assert.equal(again, active);
    assert.ok(existsSync(join(again.upperdir, 'kept')));
    store.snapshotter.remove(key);
    await store.snapshotter.mounts(key, [a]).then(
      () => assert.unreachable('mounted a removed snapshot'),
      (e: StoreError) => assert.is(e.code, 'not-found'),
    );
    assert.not.ok(existsSync(key), 'mounts() made the removed directory again');
  });
});

test('commit: the overlay diff as a layer, the bytes a RUN step wrote before; exclusions drop subtrees', async () => {
  await withStore(async (store, dir) => {
    const active = await store.snapshotter.prepare(join(dir, 'k'), []);
    fillUpper(active.upperdir);
    const sde = 1_700_000_000;
    const layer = await store.snapshotter.commit(active, { compression: 'gzip', sourceDateEpoch: sde });
    const direct = await writeLayer(store.blobs, active.upperdir, {
      overlay: true,
      compression: 'gzip',
      sourceDateEpoch: sde,
    });
    assert.equal(layer, direct);
    const all = await names(store, layer);
    for (const n of ['added', '.wh.gone', 'dir/', 'dir/.wh..wh..opq', 'dir/new', 'etc/hostname'])
      assert.ok(all.includes(n), `${n} in ${all.join(' ')}`);
    const some = await store.snapshotter.commit(active, { compression: 'gzip', exclude: ['etc/hostname', 'dir'] });
    const kept = await names(store, some);
    assert.ok(kept.includes('added') && kept.includes('.wh.gone') && kept.includes('etc/'), kept.join(' '));
    assert.not.ok(
      kept.some((n) => n.startsWith('dir') || n === 'etc/hostname'),
      kept.join(' '),
    );
  });
});

test('commit: quiesce runs before the upperdir is read and its thaw after, also when the commit fails', async () => {
  await withStore(async (store, dir) => {
    const active = await store.snapshotter.prepare(join(dir, 'k'), []);
    writeFileSync(join(active.upperdir, 'f'), 'f');
    const events: string[] = [];
    // A file written when the freeze comes is in the layer: the upperdir is read after it, not before.
    const quiesce = async () => {
      events.push('freeze');
      writeFileSync(join(active.upperdir, 'late'), 'late');
      return () => events.push('thaw');
    };
    const layer = await store.snapshotter.commit(active, { quiesce, exclude: ['x'] });
    assert.equal(events, ['freeze', 'thaw']);
    assert.ok((await names(store, layer)).includes('late'));
    events.length = 0;
    await store.snapshotter.commit({ upperdir: join(dir, 'missing') }, { quiesce }).then(
      () => assert.unreachable('committed a missing upperdir'),
      () => {},
    );
    assert.equal(events, ['freeze', 'thaw']);
  });
});

test('remove: beneath directory fds; a symlink a process left in the upperdir is not followed', async () => {
  await withStore(async (store, dir) => {
    const host = join(dir, 'host');
    mkdirSync(host);
    writeFileSync(join(host, 'precious'), 'keep me');
    const active = await store.snapshotter.prepare(join(dir, 'k'), []);
    symlinkSync(host, join(active.upperdir, 'link'));
    mkdirSync(join(active.upperdir, 'd'));
    symlinkSync(host, join(active.upperdir, 'd', 'deeper'));
    store.snapshotter.remove(active.key);
    assert.not.ok(existsSync(active.key));
    assert.is(readFileSync(join(host, 'precious'), 'utf8'), 'keep me');
  });
});

test.run();
