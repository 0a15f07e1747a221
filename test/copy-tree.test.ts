// COPY of a large directory tree (builder/src/solver/ops/copy.ts, bulkcopy.ts): the directories
// that hold files are made by `cp --parents` (two cp processes for a large tree), empty ones by
// the builder, and the layer is written from the context at the same time. The snapshot a later
// RUN sees and the layer another store unpacks must both match the context exactly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const LIST = `cd /app && find . -mindepth 1 -exec stat -c '%n %f %u:%g %Y %s' {} + | sort`;

test('a 2,400-file tree: what a RUN sees and what another store unpacks equal the context', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nCOPY tree/ /app/\nRUN ${LIST} > /listing\n` });
  const tree = join(ctx, 'tree');
  for (let p = 0; p < 12; p++) {
    for (let d = 0; d < 10; d++) {
      const dir = join(tree, `pkg-${p}`, `lib-${d}`);
      mkdirSync(dir, { recursive: true });
      for (let f = 0; f < 20; f++)
        writeFileSync(join(dir, `f${f}.js`), `module.exports = ${p * 1000 + d * 20 + f};\n`.repeat(f + 1));
    }
  }
  mkdirSync(join(tree, 'pkg-3', 'empty'));
  chmodSync(join(tree, 'pkg-5', 'lib-2'), 0o2750);
  chmodSync(join(tree, 'pkg-7'), 0o700);
  chmodSync(join(tree, 'pkg-3', 'empty'), 0o711);
  const t = new Date('2020-02-02T02:02:02Z');
  for (const d of ['pkg-5/lib-2', 'pkg-7', 'pkg-3/empty', 'pkg-0', 'pkg-0/lib-0']) utimesSync(join(tree, d), t, t);
  ok(tsbuild(['build', '-t', 'tree:1', ctx], { root }));
  const seen = ok(tsbuild(['run', '--rm', 'tree:1', 'cat', '/listing'], { root })).stdout;
  // The same listing of the context itself (owners become 0:0, as COPY does).
  const fromContext = ok(
    tsbuild(['run', '--rm', '-v', `${tree}:/app:ro`, 'tree:1', 'sh', '-c', LIST], { root }),
  ).stdout.replace(/ \d+:\d+ /g, ' 0:0 ');
  assert.is(seen.split('\n').length, 12 * 10 * 21 + 12 + 2, 'every file and directory');
  assert.is(seen, fromContext, 'the snapshot the RUN saw');
  // Another store has only the blobs: it unpacks the layers, which must hold the same.
  const file = join(tempDir('save'), 'tree.tar');
  ok(tsbuild(['save', '-o', file, 'tree:1'], { root }));
  const other = storeWithBase(tempDir('store'));
  ok(tsbuild(['load', '-i', file], { root: other }));
  const unpacked = ok(tsbuild(['run', '--rm', 'tree:1', 'sh', '-c', LIST], { root: other })).stdout;
  assert.is(unpacked, seen, 'the layer');
  cleanup(ctx, other, file);
});

test.after(() => cleanup(root));
test.run();
