// OCI layout output, checked by our validator and by independent consumers (skopeo, umoci).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import * as layout from '../src/layout/index.js';
import { validate } from '../src/validate.js';
import { sampleImage, tempStore } from './storekit.js';
import { have, skip } from '@tsbuild/testkit';

test('layout.write: index.json names, blobs, validator passes on read-back (oci and docker media types)', async () => {
  const { store, dir, cleanup } = await tempStore();
  try {
    const oci = await sampleImage(store, 'oci');
    const docker = await sampleImage(store, 'docker');
    const out = join(dir, 'layout');
    await layout.write(
      store,
      [
        { image: oci, name: 'app:1' },
        { image: docker, name: 'localhost:5000/team/app:dock' },
      ],
      out,
    );
    const index = JSON.parse(await fsp.readFile(join(out, 'index.json'), 'utf8'));
    assert.equal(
      index.manifests.map((m: { annotations: Record<string, string> }) => m.annotations),
      [
        { 'io.containerd.image.name': 'docker.io/library/app:1', 'org.opencontainers.image.ref.name': '1' },
        { 'io.containerd.image.name': 'localhost:5000/team/app:dock', 'org.opencontainers.image.ref.name': 'dock' },
      ],
    );
    assert.equal(JSON.parse(await fsp.readFile(join(out, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    const back = await layout.read(out);
    assert.is(back.images.length, 2);
    for (const e of back.images) await validate(e.image, back.blobs);
    assert.is(back.images[0].image.manifestDigest, oci.manifestDigest);
    // Writing again with the same name replaces the entry rather than duplicating it.
    await layout.write(store, [{ image: oci, name: 'app:1' }], out);
    assert.is(JSON.parse(await fsp.readFile(join(out, 'index.json'), 'utf8')).manifests.length, 2);
    // The store's own blobs validate too.
    await validate(oci, store.blobs);
    await validate(docker, store.blobs);
  } finally {
    await cleanup();
  }
});

test(
  'layout.write to another filesystem copies verified blobs; a corrupt one fails and leaves no temp ' + 'file',
  async () => {
    const { store, cleanup } = await tempStore();
    // /dev/shm is a tmpfs: hard links from the store fail with EXDEV, so every blob is copied.
    const outer = await fsp.mkdtemp('/dev/shm/tsbuild-layout-');
    try {
      const img = await sampleImage(store);
      const out = join(outer, 'good');
      await layout.write(store, [{ image: img, name: 'app:1' }], out);
      const back = await layout.read(out);
      await validate(back.images[0].image, back.blobs);
      const p = store.blobs.path(img.layers[0].digest);
      await fsp.chmod(p, 0o644);
      const b = await fsp.readFile(p);
      b[b.length >> 1] ^= 1;
      await fsp.writeFile(p, b);
      const bad = join(outer, 'bad');
      await layout.write(store, [{ image: img, name: 'app:1' }], bad).then(
        () => assert.unreachable(),
        (e: Error) => assert.match(e.message, /corrupt|integrity/i),
      );
      const left = await fsp.readdir(join(bad, 'blobs', 'sha256'));
      assert.equal(
        left.filter((n) => n.includes('.tmp-')),
        [],
        'no temp file',
      );
      assert.not.ok(left.includes(img.layers[0].digest.slice(7)), 'no corrupt blob under its digest');
    } finally {
      await fsp.rm(outer, { recursive: true, force: true });
      await cleanup();
    }
  },
);

test('validate catches a wrong diff_id count, a bad layer size and a corrupt layer', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const img = await sampleImage(store);
    const badManifest = {
      ...img.manifest,
      layers: img.manifest.layers.map((l, i) => (i === 0 ? { ...l, size: l.size + 1 } : l)),
    };
    const put = await store.blobs.put(JSON.stringify(badManifest));
    await validate({ ...img, manifestDigest: put.digest, manifest: badManifest }, store.blobs).then(
      () => assert.unreachable(),
      (e: Error) => assert.match(e.message, /descriptor says/),
    );
    const short = { ...img.manifest, layers: img.manifest.layers.slice(1) };
    const put2 = await store.blobs.put(JSON.stringify(short));
    await validate({ ...img, manifestDigest: put2.digest, manifest: short }, store.blobs).then(
      () => assert.unreachable(),
      (e: Error) => assert.match(e.message, /diff_ids/),
    );
    const p = store.blobs.path(img.layers[1].digest);
    await fsp.chmod(p, 0o644);
    const b = await fsp.readFile(p);
    b[20] ^= 1;
    await fsp.writeFile(p, b);
    await validate(img, store.blobs).then(
      () => assert.unreachable(),
      (e: Error) => assert.match(e.message, /corrupt/),
    );
  } finally {
    await cleanup();
  }
});

test('skopeo inspect/copy accept the layout (oci:DIR:REF, dir:, oci-archive:)', async () => {
  if (!have('skopeo')) return skip('skopeo not installed');
  const { store, dir, cleanup } = await tempStore();
  try {
    const img = await sampleImage(store);
    const out = join(dir, 'layout');
    await layout.write(store, [{ image: img, name: 'app:1' }], out);
    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${out}:1`], { encoding: 'utf8' }));
    assert.is(inspect.Digest, img.manifestDigest);
    assert.is(inspect.Layers.length, 2);
    assert.is(inspect.Architecture, 'amd64');
    const cfg = JSON.parse(
      execFileSync('skopeo', ['inspect', '--config', '--raw', `oci:${out}:1`], { encoding: 'utf8' }),
    );
    assert.equal(cfg.config.Healthcheck.Test, ['CMD', 'true']);
    execFileSync('skopeo', ['copy', '--quiet', `oci:${out}:1`, `dir:${join(dir, 'copied')}`]);
    const files = await fsp.readdir(join(dir, 'copied'));
    assert.ok(files.includes('manifest.json'));
    execFileSync('skopeo', ['copy', '--quiet', `oci:${out}:1`, `oci-archive:${join(dir, 'a.tar')}:app:1`]);
    assert.ok((await fsp.stat(join(dir, 'a.tar'))).size > 0);
  } finally {
    await cleanup();
  }
});

test('umoci unpack gives the expected tree (whiteout applied)', async () => {
  if (!have('umoci')) return skip('umoci not installed');
  const { store, dir, cleanup } = await tempStore();
  try {
    const img = await sampleImage(store);
    const out = join(dir, 'layout');
    await layout.write(store, [{ image: img, name: 'app:1' }], out);
    execFileSync('umoci', ['unpack', '--image', `${out}:1`, join(dir, 'bundle')], { stdio: 'pipe' });
    const rootfs = join(dir, 'bundle', 'rootfs');
    assert.is(await fsp.readFile(join(rootfs, 'etc/kept'), 'utf8'), 'kept\n');
    await fsp.stat(join(rootfs, 'etc/removed')).then(
      () => assert.unreachable('whiteout not applied'),
      () => {},
    );
    assert.is(await fsp.readFile(join(rootfs, 'app/hello'), 'utf8'), 'hello world\n');
    assert.is((await fsp.stat(join(rootfs, 'app/hello'))).mode & 0o777, 0o755);
    assert.is(await fsp.readlink(join(rootfs, 'app/link')), 'hello');
    const config = JSON.parse(await fsp.readFile(join(dir, 'bundle', 'config.json'), 'utf8'));
    assert.equal(config.process.args, ['/bin/sh']);
  } finally {
    await cleanup();
  }
});

test.run();
