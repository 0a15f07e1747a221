// LayerQueue.finish(): a build that fails keeps what its steps made. When one layer's write fails,
// the diffs of the layers that were written still become snapshots, and the failed one's diff is
// removed, before the failure is thrown.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainID, Store, type Digest, type Layer } from '@tsbuild/layerstore';
import { LayerQueue } from '../src/solver/ops/layer-queue.js';
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

test.after(() => rmSync(base, { recursive: true, force: true }));
test.run();
