// COPY --from of a directory that holds device nodes and FIFOs (issue 15, item 8): they arrive as
// nodes, as current BuildKit (fsutil) makes them, with their numbers, mode, owner; never opened by
// the builder (a device node is made with mknod beneath the staging dir's fd; every sandbox mounts
// the rootfs nodev, so they are inert). They were left out before, silently. Named as the source
// itself, a special file is still refused (test/hostile-dockerfiles.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';
import { steps } from './helpers/progress.js';

const make =
  'mkdir -p /d/sub && echo f > /d/file && mknod /d/null c 1 3 && chown 2:3 /d/null && chmod 640 /d/null && ' +
  'mknod /d/sub/loop b 7 $MINOR && mkfifo -m 600 /d/sub/pipe';
const dockerfile = `FROM ${Base} AS s
ARG MINOR=0
RUN ${make}
FROM ${Base}
COPY --from=s /d/ /copied/
`;
const root = storeWithBase();
const ctx = context({ Dockerfile: dockerfile });
const layout = tempDir('layout');
const build = (minor: number) =>
  ok(tsbuild(['build', '--progress=plain', '--build-arg', `MINOR=${minor}`, '-t', 'dev:1', ctx], { root }));

// `ls -ln` of busybox: type and mode, links, uid, gid, then "major, minor" for a device.
const expected: [string, RegExp][] = [
  ['/copied/null', /^crw-r----- +1 2 +3 +1, +3 /],
  ['/copied/sub/loop', /^brw-r--r-- +1 0 +0 +7, +0 /],
  ['/copied/sub/pipe', /^prw------- +1 0 +0 +0 /],
  ['/copied/file', /^-rw-r--r-- +1 0 +0 +2 /],
];

function listing(store: string): Map<string, string> {
  const paths = expected.map(([p]) => p).join(' ');
  const out = ok(tsbuild(['run', '--rm', 'dev:1', 'sh', '-c', `ls -ln ${paths}`], { root: store })).stdout;
  return new Map(
    out
      .trim()
      .split('\n')
      .map((l) => [l.slice(l.indexOf('/copied/')), l]),
  );
}

test('device nodes and FIFOs below a copied directory arrive as nodes, with numbers, mode and owner', () => {
  build(0);
  const seen = listing(root);
  for (const [path, re] of expected) assert.match(seen.get(path) ?? `${path}: missing`, re, path);
});

test('the layer carries them as device and FIFO entries (another store loads them)', () => {
  ok(
    tsbuild(['build', '-q', '--build-arg', 'MINOR=0', '-t', 'dev:1', '-o', `type=oci,dest=${layout},tar=false`, ctx], {
      root,
    }),
  );
  // The export's own manifest: its layers are compressed on the way out, so their digests are not the store's.
  const blob = (d: string) => join(layout, 'blobs', 'sha256', d.slice(7));
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  const top = manifest.layers[manifest.layers.length - 1].digest.slice(7);
  const tar = execFileSync('tar', ['-tvzf', join(layout, 'blobs', 'sha256', top)], { encoding: 'utf8' });
  assert.match(tar, /^crw-r----- 2\/3 +1,3 .* copied\/null$/m);
  assert.match(tar, /^brw-r--r-- 0\/0 +7,0 .* copied\/sub\/loop$/m);
  assert.match(tar, /^prw------- 0\/0 +0 .* copied\/sub\/pipe$/m);
  const saved = tempDir('save');
  const file = join(saved, 'dev.tar');
  ok(tsbuild(['save', '-o', file, 'dev:1'], { root }));
  const other = storeWithBase(tempDir('store'));
  ok(tsbuild(['load', '-i', file], { root: other }));
  const seen = listing(other);
  for (const [path, re] of expected)
    assert.match(seen.get(path) ?? `${path}: missing`, re, `loaded elsewhere: ${path}`);
  cleanup(other, saved);
});

test("a device's numbers are in the copy's key: another minor misses, the same one hits", () => {
  assert.ok(steps(build(1).stderr).ran.includes('COPY --from=s /d/ /copied/'), 'minor 1: the copy runs');
  assert.ok(steps(build(1).stderr).cached.includes('COPY --from=s /d/ /copied/'), 'minor 1 again: cached');
});

test.after(() => cleanup(root, ctx, layout));
test.run();
