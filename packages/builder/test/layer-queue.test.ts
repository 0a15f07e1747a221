// LayerQueue.finish(): a build that fails keeps what its steps made. When one layer's write fails,
// the diffs of the layers that were written still become snapshots, and the failed one's diff is
// removed, before the failure is thrown. LayerQueue.write: a small layer lets the next one start
// once its bytes are written, before its sync; a large one, or one past SYNCING_MAX, is waited for whole.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainID, Store, type Digest, type Layer } from '@tsbuild/layerstore';
import { LayerQueue, SMALL_LAYER, SYNCING_MAX, type Written } from '../src/solver/ops/layer-queue.js';
import { createReporter } from '../src/progress/index.js';

const base = mkdtempSync(join(tmpdir(), 'tsbuild-layer-queue-'));

/** A diff directory in the store's temp dir, as a step hands it over. */
function diff(store: Store, name: string): string {
  const dir = join(store.tmpDir, `diff-${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'file'), name);
  return dir;
}

const diffID = (c: string): Digest => `sha256:${c.repeat(64)}`;

const ways: [name: string, end: (q: LayerQueue) => Promise<void>][] = [
  ['finish()', (q) => q.finish()],
  [
    'settle() then adopt() as solve(true) does',
    (q) =>
      q.settle().catch(async (e: unknown) => {
        await q.adopt().catch(() => {});
        throw e;
      }),
  ],
];

for (const [name, end] of ways)
  test(`${name}: a failed layer write still adopts the others and removes its own diff, then throws`, async () => {
    const store = await Store.open(join(base, `store-${name.length}`));
    const reporter = await createReporter('quiet');
    const q = new LayerQueue(store, reporter);
    const good = diff(store, 'good');
    const written = { diffID: diffID('a') } as Layer;
    const ok = q.hold(
      good,
      q.write('step 1', () => Promise.resolve(written)),
      [],
    );
    const bad = diff(store, 'bad');
    q.hold(
      bad,
      q.write('step 2', () => Promise.reject(new Error('no space left on device'))),
      [ok],
    );
    const err = await end(q).then(
      () => undefined,
      (e: Error) => e,
    );
    reporter.close();
    assert.ok(err, 'the failure is thrown');
    assert.match(err!.message, /step 2: writing its layer failed: no space left on device/);
    const id = chainID([written.diffID]);
    assert.ok(await store.snapshots.get(id), 'the written layer is a snapshot');
    assert.not.ok(existsSync(good), 'its diff was renamed into snapshots/');
    assert.not.ok(existsSync(bad), 'the failed layer leaves no diff behind');
  });

/** A layer write the test ends by hand: it says `written(size)` at once, then waits for end(). */
function heldWrite(size: number) {
  let end!: () => void;
  const synced = new Promise<void>((r) => (end = r));
  const state = { started: false, end };
  const make = async (written: Written): Promise<Layer> => {
    state.started = true;
    written(size);
    await synced;
    return { diffID: diffID('b'), digest: diffID('b'), size } as Layer;
  };
  return { state, make };
}

/** Turns of the event loop enough for a released queue to start its next write. */
const turns = () => new Promise((r) => setTimeout(r, 0));

const sizes: [name: string, size: number, nextStarts: boolean][] = [
  ['an empty layer', 0, true],
  ['a layer of SMALL_LAYER bytes', SMALL_LAYER, true],
  ['a layer one byte over SMALL_LAYER', SMALL_LAYER + 1, false],
  ['a 500 MB layer', 500e6, false],
];

for (const [name, size, nextStarts] of sizes)
  test(`${name}: the next layer ${nextStarts ? 'starts while it syncs' : 'waits until it is written'}`, async () => {
    const store = await Store.open(join(base, `store-size-${size}`));
    const reporter = await createReporter('quiet');
    const q = new LayerQueue(store, reporter);
    const first = heldWrite(size);
    const second = heldWrite(1);
    const done = [q.write('step 1', first.make), q.write('step 2', second.make)];
    await turns();
    assert.ok(first.state.started);
    assert.is(second.state.started, nextStarts);
    first.state.end();
    await turns();
    assert.ok(second.state.started, 'the next layer starts once the first is written');
    second.state.end();
    await Promise.all(done);
    await q.finish();
    reporter.close();
  });

test(`at most SYNCING_MAX (${SYNCING_MAX}) small layers sync beside the queue`, async () => {
  const store = await Store.open(join(base, 'store-syncing'));
  const reporter = await createReporter('quiet');
  const q = new LayerQueue(store, reporter);
  const writes = Array.from({ length: SYNCING_MAX + 3 }, () => heldWrite(10));
  const done = writes.map((w, i) => q.write(`step ${i + 1}`, w.make));
  await turns();
  // SYNCING_MAX released, the next one written but held whole, the rest not started.
  const started = () => writes.filter((w) => w.state.started).length;
  assert.is(started(), SYNCING_MAX + 1);
  writes[0].state.end();
  await turns();
  // One sync ended: the held one still holds the queue (it was not released), so nothing new starts.
  assert.is(started(), SYNCING_MAX + 1);
  writes[SYNCING_MAX].state.end();
  await turns();
  assert.is(started(), SYNCING_MAX + 3, 'the rest start, each released as a sync slot is free');
  for (const w of writes) w.state.end();
  await Promise.all(done);
  await q.finish();
  reporter.close();
});

test.after(() => rmSync(base, { recursive: true, force: true }));
test.run();
