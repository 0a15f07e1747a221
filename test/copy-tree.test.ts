// COPY of a large directory tree (builder/src/solver/ops/copy.ts, bulkcopy.ts): the directories
// that hold files are made by the copier (native/copy.c, threads on every core), empty ones by
// the builder, and the layer is written from the context at the same time. The snapshot a later
// RUN sees and the layer another store unpacks must both match the context exactly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';
import { makeOddTree } from './helpers/odd-tree.js';

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

// The layer a COPY of a directory makes, byte for byte, pinned: the digests are what the builder made before the
// header encoder and the hashing of large layers on a worker thread changed (issue 17), and must not move.
const PINNED = [
  {
    name: 'COPY of the tree alone (cp and the streamed entries)',
    copy: 'COPY odd/ /app/',
    diffID: 'sha256:4c02cfae749c2120214e7cc5cf022307269c27b0397ff84e1640292be3b78ab1',
  },
  {
    name: 'COPY of the tree into a directory the image has (each entry looked up)',
    copy: 'COPY odd/ /etc/',
    diffID: 'sha256:4ce93cf59492957401dec5df262e16dcc10b787b63f99c567ddcd4508329e4da',
  },
  {
    name: 'COPY --chmod of the tree (each file placed)',
    copy: 'COPY --chmod=640 odd/ /app/',
    diffID: 'sha256:2107f8fef8ca0e8cfc346eacab6dcc03ffe2516076692d3cde27b0690fd41a8b',
  },
];
for (const row of PINNED) {
  test(`pinned layer digest: ${row.name}`, () => {
    const ctx = context({ Dockerfile: `FROM ${Base}\n${row.copy}\n` });
    makeOddTree(join(ctx, 'odd'));
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    ok(tsbuild(['build', '-q', '-t', 'odd:1', ctx], { root, env }));
    const img = JSON.parse(ok(tsbuild(['inspect', 'odd:1'], { root })).stdout) as {
      RootFS: { Layers: string[] };
    };
    assert.is(img.RootFS.Layers.at(-1), row.diffID);
    cleanup(ctx);
  });
}

test('the odd tree: what a RUN sees after COPY equals the context (setuid, sticky, links, empty dirs)', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nCOPY odd/ /app/\nRUN ${LIST} > /listing\n` });
  makeOddTree(join(ctx, 'odd'));
  ok(tsbuild(['build', '-t', 'odd:2', ctx], { root }));
  const seen = ok(tsbuild(['run', '--rm', 'odd:2', 'cat', '/listing'], { root })).stdout;
  const fromContext = ok(
    tsbuild(['run', '--rm', '-v', `${join(ctx, 'odd')}:/app:ro`, 'odd:2', 'sh', '-c', LIST], { root }),
  ).stdout.replace(/ \d+:\d+ /g, ' 0:0 ');
  assert.ok(seen.includes(' 89ed '), 'bin/su is there with its setuid bit (mode 104755 is 89ed in hex)');
  assert.is(seen, fromContext);
  cleanup(ctx);
});

// The copier makes new entries with this process's group and the modes of the context; the kernel would give an
// entry made in a setgid directory that directory's group, and a directory made there its setgid bit. So it did
// with cp: the RUN saw /app/sub 2755 0:50 and its files 0:50 while the layer (what a pull gives) said 755 0:0.
test('a COPY into a setgid directory of another group: the RUN sees what the layer holds', () => {
  const ctx = context({
    Dockerfile:
      `FROM ${Base}\nRUN mkdir /app && chgrp 50 /app && chmod 2775 /app\nCOPY d/ /app/\n` + `RUN ${LIST} > /listing\n`,
    'd/sub/f': 'f\n',
    'd/sub/deeper/g': 'g\n',
    'd/-rf': 'a name like an option\n',
    'd/new\nline': 'a newline in the name\n',
  });
  symlinkSync('sub/f', join(ctx, 'd', 'link'));
  // A FIFO in a copied directory is left out, as before the copier (the context's listing passes it over).
  assert.is(spawnSync('mkfifo', [join(ctx, 'd', 'sub', 'fifo')]).status, 0, 'mkfifo');
  ok(tsbuild(['build', '-t', 'sgid:1', ctx], { root }));
  const seen = ok(tsbuild(['run', '--rm', 'sgid:1', 'cat', '/listing'], { root })).stdout;
  assert.not.match(seen, / 0:50 /, 'an entry of the group of /app');
  assert.not.match(seen, /fifo/, 'the FIFO');
  assert.match(seen, /\.\/sub\/deeper\/g /);
  const saved = tempDir('save');
  ok(tsbuild(['save', '-o', join(saved, 'sgid.tar'), 'sgid:1'], { root }));
  const other = storeWithBase(tempDir('store'));
  ok(tsbuild(['load', '-i', join(saved, 'sgid.tar')], { root: other }));
  const unpacked = ok(tsbuild(['run', '--rm', 'sgid:1', 'sh', '-c', LIST], { root: other })).stdout;
  assert.is(seen, unpacked);
  cleanup(ctx, other, saved);
});

// A directory the copier fills that also holds an empty directory: the builder makes the empty one (and, as
// mkdir -p, its missing parents, 0755) before the copier runs, which found the parent there and left its mode.
// The RUN saw /app/mixed 755 where the layer (and the JS placing, without the copier) said 700.
for (const copy of ['COPY tree/ /app/', 'COPY tree/ other.txt /app/']) {
  test(`${copy}: a directory holding files and an empty directory keeps its mode in the snapshot`, () => {
    const ctx = context({
      Dockerfile: `FROM ${Base}\n${copy}\nRUN ${LIST} > /listing\n`,
      'tree/mixed/f': 'f\n',
      'tree/mixed/sub/g': 'g\n',
      'other.txt': 'other\n',
    });
    makeOddTree(join(ctx, 'tree', 'odd'));
    mkdirSync(join(ctx, 'tree', 'mixed', 'empty'));
    mkdirSync(join(ctx, 'tree', 'mixed', 'sub', 'empty2'));
    chmodSync(join(ctx, 'tree', 'mixed', 'sub'), 0o750);
    chmodSync(join(ctx, 'tree', 'mixed'), 0o700);
    ok(tsbuild(['build', '-t', 'mixed:1', ctx], { root }));
    const seen = ok(tsbuild(['run', '--rm', 'mixed:1', 'cat', '/listing'], { root })).stdout;
    assert.match(seen, /^\.\/mixed 41c0 /m, 'mixed is 0700');
    assert.match(seen, /^\.\/mixed\/sub 41e8 /m, 'mixed/sub is 0750');
    const saved = tempDir('save');
    ok(tsbuild(['save', '-o', join(saved, 'mixed.tar'), 'mixed:1'], { root }));
    const other = storeWithBase(tempDir('store'));
    ok(tsbuild(['load', '-i', join(saved, 'mixed.tar')], { root: other }));
    const unpacked = ok(tsbuild(['run', '--rm', 'mixed:1', 'sh', '-c', LIST], { root: other })).stdout;
    assert.is(seen, unpacked, 'the snapshot the RUN saw and the layer');
    cleanup(ctx, other, saved);
  });
}

// Two directory sources with a directory in common merge there, as docker's COPY does (the later one's mode wins):
// the second source's directory removed the first one's tree, and /app/sub/x was silently lost from the image.
for (const copy of ['COPY a/ b/ /app/', 'COPY --chmod=750 a/ b/ /app/']) {
  test(`${copy}: a directory both sources have holds the files of both`, () => {
    const ctx = context({
      Dockerfile: `FROM ${Base}\n${copy}\nRUN ${LIST} > /listing\n`,
      'a/sub/x': 'x\n',
      'a/sub/deep/x2': 'x2\n',
      'a/only-a': 'a\n',
      'b/sub/y': 'y\n',
      'b/sub/deep/y2': 'y2\n',
    });
    chmodSync(join(ctx, 'a', 'sub'), 0o700);
    chmodSync(join(ctx, 'b', 'sub'), 0o711);
    utimesSync(join(ctx, 'a', 'sub'), new Date('2001-01-01T00:00:00Z'), new Date('2001-01-01T00:00:00Z'));
    utimesSync(join(ctx, 'b', 'sub'), new Date('2002-02-02T00:00:00Z'), new Date('2002-02-02T00:00:00Z'));
    ok(tsbuild(['build', '-t', 'merge:1', ctx], { root }));
    const seen = ok(tsbuild(['run', '--rm', 'merge:1', 'cat', '/listing'], { root })).stdout;
    for (const f of ['only-a', 'sub/x', 'sub/deep/x2', 'sub/y', 'sub/deep/y2'])
      assert.match(seen, new RegExp(`^\\./${f} `, 'm'), f);
    if (!copy.includes('--chmod')) assert.match(seen, /^\.\/sub 41c9 /m, 'sub has the mode of the later source (0711)');
    assert.match(seen, /^\.\/sub \S+ 0:0 1012608000 /m, 'sub has the mtime of the later source');
    const saved = tempDir('save');
    ok(tsbuild(['save', '-o', join(saved, 'merge.tar'), 'merge:1'], { root }));
    const other = storeWithBase(tempDir('store'));
    ok(tsbuild(['load', '-i', join(saved, 'merge.tar')], { root: other }));
    const unpacked = ok(tsbuild(['run', '--rm', 'merge:1', 'sh', '-c', LIST], { root: other })).stdout;
    assert.is(seen, unpacked, 'the snapshot the RUN saw and the layer');
    cleanup(ctx, other, saved);
  });
}

// An image directory a step makes or replaces a name in takes the step's time (SOURCE_DATE_EPOCH's), one it only
// merges a directory into keeps its own, as BuildKit leaves them (differential case copy-dir-mtimes): a context tree
// (streamed), a file, an archive, WORKDIR. What a later RUN sees and what another store unpacks agree.
test('SOURCE_DATE_EPOCH: image directories a step writes a name in are dated by it, in the RUN and the layer', () => {
  const STAT = 'stat -c "%n %Y" /e1 /e2 /e3 /e4 /m';
  const ctx = context({
    Dockerfile:
      `FROM ${Base}\nRUN mkdir -p /e1 /e2 /e3 /e4 /m/sub\n` +
      `RUN touch -d '2004-04-04 00:00:00' /e1 /e2 /e3 /e4 /m/sub /m\n` +
      `COPY tree/ /e1/\nCOPY f /e2/\nADD a.tar /e3/\nWORKDIR /e4/new\nCOPY msrc/ /m/\nRUN ${STAT} > /listing\n`,
    'tree/t': 't\n',
    f: 'f\n',
    'msrc/sub/x': 'x\n',
  });
  mkdirSync(join(ctx, 'tar', 'td'), { recursive: true });
  writeFileSync(join(ctx, 'tar', 'td', 'x'), 'x\n');
  assert.is(spawnSync('tar', ['-cf', join(ctx, 'a.tar'), '-C', join(ctx, 'tar'), 'td']).status, 0);
  ok(tsbuild(['build', '-q', '-t', 'dated:1', ctx], { root, env: { SOURCE_DATE_EPOCH: '1700000000' } }));
  const seen = ok(tsbuild(['run', '--rm', 'dated:1', 'cat', '/listing'], { root })).stdout;
  assert.is(seen, '/e1 1700000000\n/e2 1700000000\n/e3 1700000000\n/e4 1700000000\n/m 1081036800\n');
  const saved = tempDir('save');
  ok(tsbuild(['save', '-o', join(saved, 'dated.tar'), 'dated:1'], { root }));
  const other = storeWithBase(tempDir('store'));
  ok(tsbuild(['load', '-i', join(saved, 'dated.tar')], { root: other }));
  assert.is(ok(tsbuild(['run', '--rm', 'dated:1', 'sh', '-c', STAT], { root: other })).stdout, seen, 'the layers');
  cleanup(ctx, other, saved);
});

test.after(() => cleanup(root));
test.run();
