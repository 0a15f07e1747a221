// Deletions across real layer boundaries: the layers carry OCI whiteouts and opaque markers,
// the flattened image (as umoci unpacks it) is what the Dockerfile says, and it equals the
// image BuildKit builds from the same Dockerfile (as a private dockerd flattens it for `docker export`).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';
import { layoutManifest, sh, tree, umociRootfs } from './helpers/image.js';
import { skip, startDockerd } from '@tsbuild/testkit';

const dockerfile = `FROM ${Base}
RUN mkdir -p /data/keep /data/gone /data/redo && echo a > /data/keep/a && echo b > /data/gone/b \\
 && echo c > /data/redo/c && echo f > /data/file && echo g > /data/deleted && echo h > /data/hl \\
 && ln /data/hl /data/hl2 && ln -s file /data/sym && echo m > /data/mode && touch /data/owned
RUN rm -rf /data/gone /data/deleted /data/redo && mkdir /data/redo && echo new > /data/redo/new \\
 && chmod 600 /data/mode && chown 1000:1000 /data/owned && rm /data/sym && ln -s keep/a /data/sym && rm /data/hl
RUN echo back > /data/deleted && ln /data/hl2 /data/hl3
`;

const expected = {
  data: { type: 'dir' },
  'data/deleted': { type: 'file', content: 'back\n' },
  'data/file': { type: 'file', content: 'f\n' },
  'data/hl2': { type: 'file', content: 'h\n' },
  'data/hl3': { type: 'file', content: 'h\n' },
  'data/keep': { type: 'dir' },
  'data/keep/a': { type: 'file', content: 'a\n' },
  'data/mode': { type: 'file', mode: '600', content: 'm\n' },
  'data/owned': { type: 'file', uid: 1000, gid: 1000 },
  'data/redo': { type: 'dir' },
  'data/redo/new': { type: 'file', content: 'new\n' },
  'data/sym': { type: 'symlink', target: 'keep/a' },
} as Record<string, Record<string, unknown>>;

const root = storeWithBase();
const ctx = context({ Dockerfile: dockerfile });
const layout = tempDir('layout');
ok(tsbuild(['build', '-t', 'wh:1', '-o', `type=oci,dest=${layout},tar=false`, ctx], { root }));
const ours = umociRootfs(layout, '1');
const dataOnly = (rel: string) => !(rel === 'data' || rel.startsWith('data/'));

test('the flattened image is what the Dockerfile says', () => {
  const t = tree(ours, dataOnly);
  assert.equal(Object.keys(t).sort(), Object.keys(expected).sort());
  for (const [path, want] of Object.entries(expected))
    for (const [k, v] of Object.entries(want))
      assert.equal((t[path] as unknown as Record<string, unknown>)[k], v, `${path} ${k}`);
});

test('the delete layer carries whiteouts and an opaque marker; hardlinks stay links', () => {
  // The exported layers (gzip), as the layout's own manifest names them: the store keeps them uncompressed.
  const layers = layoutManifest(layout).layers.map((l) => join(layout, 'blobs', 'sha256', l.digest.slice(7)));
  const list = (i: number) => sh('tar', ['-tvzf', layers[layers.length - 3 + i]]);
  const del = list(1);
  for (const name of ['data/.wh.gone', 'data/.wh.deleted', 'data/.wh.hl', 'data/redo/.wh..wh..opq'])
    assert.match(del, name);
  assert.not.match(del, 'data/gone/b');
  const recreate = list(2);
  assert.match(recreate, /data\/hl3 link to data\/hl2|data\/hl2 link to data\/hl3/);
});

test('BuildKit builds the same tree from the same Dockerfile (flattened by docker export)', async () => {
  const dir = tempDir('dockerd');
  let d: Awaited<ReturnType<typeof startDockerd>>;
  try {
    d = await startDockerd(dir);
  } catch (e) {
    cleanup(dir);
    throw e;
  }
  if (typeof d === 'string') {
    cleanup(dir);
    return skip(`no private dockerd for the BuildKit comparison: ${d}`);
  }
  try {
    const baseTar = join(dir, 'base.tar');
    ok(tsbuild(['save', '-o', baseTar, Base], { root }));
    assert.is(d.docker(['load', '-i', baseTar]).code, 0, 'docker load of our base');
    // RUN steps on the daemon's default network: its private bridge.
    const b = d.docker(['build', '-t', 'wh-buildkit:1', ctx], { DOCKER_BUILDKIT: '1' });
    assert.is(b.code, 0, b.stderr);
    // The reference side is flattened by dockerd itself (its graph driver applies BuildKit's layers,
    // whiteouts included; `docker export` writes the container's root as a tar), never by tsbuild.
    const created = d.docker(['create', 'wh-buildkit:1', '/bin/sh']);
    assert.is(created.code, 0, created.stderr);
    const exported = join(dir, 'bk-export.tar');
    assert.is(d.docker(['export', '-o', exported, created.stdout.trim()]).code, 0, 'docker export');
    const theirs = tempDir('bk-rootfs');
    sh('tar', ['-x', '--numeric-owner', '--same-owner', '--same-permissions', '-f', exported, '-C', theirs]);
    const strip = (t: ReturnType<typeof tree>) =>
      Object.fromEntries(Object.entries(t).map(([k, v]) => [k, { ...v, mode: k === 'data' ? '' : v.mode }]));
    assert.equal(strip(tree(ours, dataOnly)), strip(tree(theirs, dataOnly)));
    cleanup(theirs);
  } finally {
    await d.stop();
    cleanup(dir);
  }
});

test.after(() => cleanup(root, ctx, layout, ours.replace(/\/bundle\/rootfs$/, '')));
test.run();
