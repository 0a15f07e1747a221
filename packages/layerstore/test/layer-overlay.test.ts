// A REAL overlayfs upperdir (mounted here, files deleted and a directory recreated) becomes a
// layer with OCI whiteouts; unpacked it gives overlay's own markers back, and the kernel
// mounting it as a lowerdir shows the same view the container had.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readTar, writeLayer, decompressLayer } from '../src/layer/index.js';
import { Snapshots } from '../src/snapshot/index.js';
import { exportRootfs } from '../src/layer/index.js';
import { getXattr, listXattrs } from '@tsbuild/sys';
import { TempBlobs } from './helpers/temp-blobs.js';
import { describe } from './helpers/tree.js';

const work = mkdtempSync(join(tmpdir(), 'layer-ovl-'));
const p = (...s: string[]) => join(work, ...s);
const blobs = new TempBlobs(p('blobs'));
const opts = 'redirect_dir=off,metacopy=off,index=off';

function mountOverlay(lower: string, upper: string, workdir: string, at: string) {
  for (const d of [upper, workdir, at]) mkdirSync(d, { recursive: true });
  execFileSync('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${lower},upperdir=${upper},workdir=${workdir},${opts}`,
    at,
  ]);
}

// lower: a/{keep,gone}, dir/{old,sub/deep}, top
for (const d of ['lower/a', 'lower/dir/sub']) mkdirSync(p(d), { recursive: true });
for (const f of ['a/keep', 'a/gone', 'dir/old', 'dir/sub/deep', 'top']) writeFileSync(p('lower', f), f);
mountOverlay(p('lower'), p('upper'), p('ovl-work'), p('merged'));
let view: ReturnType<typeof describe>;
try {
  unlinkSync(p('merged/a/gone'));
  rmSync(p('merged/dir'), { recursive: true });
  mkdirSync(p('merged/dir'));
  writeFileSync(p('merged/dir/new'), 'new');
  writeFileSync(p('merged/added'), 'added');
  view = describe(p('merged'));
} finally {
  execFileSync('umount', [p('merged')]);
}

test('the upperdir really has overlay markers', () => {
  const st = lstatSync(p('upper/a/gone'));
  assert.ok(st.isCharacterDevice() && st.rdev === 0);
  assert.is(getXattr(p('upper/dir'), 'trusted.overlay.opaque')?.toString(), 'y');
});

test('overlay upperdir → layer with .wh. entries, in path order, without trusted.overlay xattrs', async () => {
  const layer = await writeLayer(blobs, p('upper'), { overlay: true, compression: 'gzip' });
  const names: string[] = [];
  for await (const { header } of readTar(decompressLayer(blobs.open(layer.digest), layer.mediaType))) {
    names.push(header.name);
    assert.not.ok(
      Object.keys(header.xattrs).some((k) => k.startsWith('trusted.overlay.')),
      header.name,
    );
  }
  assert.equal(names, ['a/', 'a/.wh.gone', 'added', 'dir/', 'dir/.wh..wh..opq', 'dir/new']);
});

test(
  'layer → snapshot gives the 0/0 device and opaque xattr back; the kernel agrees; exportRootfs ' + 'flattens',
  async () => {
    const base = await writeLayer(blobs, p('lower'), { compression: 'gzip' });
    const top = await writeLayer(blobs, p('upper'), { overlay: true, compression: 'gzip' });
    const snaps = new Snapshots(p('snapshots'), blobs, p('tmp'));
    const [s0, s1] = await snaps.ensure([base, top]);
    const wh = lstatSync(join(s1!.path, 'a/gone'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'whiteout is a 0/0 char device');
    assert.is(getXattr(join(s1!.path, 'dir'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.not.ok(
      listXattrs(join(s1!.path, 'a')).some((k) => k.startsWith('trusted.overlay.')),
      'no leftover overlay bookkeeping',
    );

    // Mount the two snapshots as lowerdirs: same view as the container had.
    mkdirSync(p('view'));
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${s1!.path}:${s0!.path},${opts}`, p('view')]);
    let mounted: ReturnType<typeof describe>;
    try {
      mounted = describe(p('view'));
      assert.equal(
        mounted.map((r) => r.path),
        view.map((r) => r.path),
      );
    } finally {
      execFileSync('umount', [p('view')]);
    }

    await exportRootfs([s0!, s1!], p('rootfs'));
    assert.equal(describe(p('rootfs')), mounted);
  },
);

test.after(() => {
  rmSync(work, { recursive: true, force: true });
});
test.run();
