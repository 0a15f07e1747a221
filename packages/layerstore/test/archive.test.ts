// Archives: oci and docker formats written, read back by us, skopeo and a real dockerd; docker save
// output (old format from dockerd 20.10) loaded back; hostile and corrupt archives rejected.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createWriteStream } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import * as archive from '../src/archive/index.js';
import { Store } from '../src/store.js';
import { validate } from '../src/validate.js';
import { StoreError } from '../src/types.js';
import { baseConfig, makeTar, sampleImage, sha, tempRoot, tempStore } from './storekit.js';
import { have, skip, startDockerd } from '@tsbuild/testkit';

async function writeTar(
  file: string,
  entries: {
    name: string;
    body?: Buffer | string;
    type?: 'file' | 'symlink' | 'directory' | 'link';
    linkname?: string;
  }[],
): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack as unknown as Readable, createWriteStream(file));
  for (const e of entries) {
    if (e.type && e.type !== 'file') pack.entry({ name: e.name, type: e.type, linkname: e.linkname });
    else pack.entry({ name: e.name }, e.body ?? '');
  }
  pack.finalize();
  await done;
}

async function listTar(file: string): Promise<string[]> {
  const names: string[] = [];
  const ex = tar.extract();
  const reading = (async () => {
    for await (const e of ex) {
      names.push(e.header.name);
      e.resume();
    }
  })();
  await pipeline((await import('node:fs')).createReadStream(file), ex as unknown as NodeJS.WritableStream);
  await reading;
  return names;
}

for (const format of ['oci', 'docker'] as const) {
  test(`archive.write ${format}: members, round trip through load, validator passes`, async () => {
    const { store, dir, cleanup } = await tempStore();
    try {
      const img = await sampleImage(store);
      const file = join(dir, `${format}.tar`);
      await archive.write(
        store,
        [
          { image: img, name: 'app:1' },
          { image: img, name: 'localhost:5000/app:2' },
        ],
        file,
        { format },
      );
      const names = await listTar(file);
      for (const n of [
        'oci-layout',
        'index.json',
        `blobs/sha256/${img.manifestDigest.slice(7)}`,
        `blobs/sha256/${img.configDigest.slice(7)}`,
      ])
        assert.ok(names.includes(n), n);
      assert.is(names.includes('manifest.json'), format === 'docker');
      assert.is(names.includes('repositories'), format === 'docker');
      const other = await Store.open(join(dir, 'other'));
      const loaded = await archive.load(other, file);
      assert.equal(loaded.flatMap((l) => l.names).sort(), ['docker.io/library/app:1', 'localhost:5000/app:2']);
      const back = await other.images.get('app:1');
      assert.is(back?.manifestDigest, img.manifestDigest);
      await validate(back!, other.blobs);
      if (format === 'oci') {
        // skopeo reads the OCI archive its own way: the manifest digest it sees is ours.
        if (!have('skopeo')) return skip('skopeo not installed: the OCI archive was not read by skopeo');
        const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${file}:1`], { encoding: 'utf8' }));
        assert.is(inspect.Digest, img.manifestDigest);
      }
    } finally {
      await cleanup();
    }
  });
}

test('archive.load: an old-format docker save archive (v1.2: <id>/layer.tar, <id>/json, symlinked layer)', async () => {
  const { store, dir, cleanup } = await tempStore();
  try {
    const l1 = await makeTar([{ name: 'a.txt', content: 'A\n' }]);
    const l2 = await makeTar([{ name: 'b.txt', content: 'B\n' }]);
    const cfg = Buffer.from(
      JSON.stringify(baseConfig({ rootfs: { type: 'layers', diff_ids: [sha(l1), sha(l2), sha(l1)] } })),
    );
    const cfgHex = sha(cfg).slice(7);
    const id1 = 'a'.repeat(64),
      id2 = 'b'.repeat(64),
      id3 = 'c'.repeat(64);
    const file = join(dir, 'old.tar');
    await writeTar(file, [
      { name: `${id1}/`, type: 'directory' },
      { name: `${id1}/VERSION`, body: '1.0' },
      { name: `${id1}/json`, body: '{}' },
      { name: `${id1}/layer.tar`, body: l1 },
      { name: `${id2}/layer.tar`, body: l2 },
      { name: `${id3}/layer.tar`, type: 'symlink', linkname: `../${id1}/layer.tar` },
      { name: `${cfgHex}.json`, body: cfg },
      {
        name: 'manifest.json',
        body: JSON.stringify([
          {
            Config: `${cfgHex}.json`,
            RepoTags: ['old:v1'],
            Layers: [`${id1}/layer.tar`, `${id2}/layer.tar`, `${id3}/layer.tar`],
          },
        ]),
      },
      { name: 'repositories', body: JSON.stringify({ old: { v1: id3 } }) },
    ]);
    const loaded = await archive.load(store, file);
    assert.equal(loaded[0].names, ['docker.io/library/old:v1']);
    const img = (await store.images.get('old:v1'))!;
    assert.is(img.configDigest, `sha256:${cfgHex}`);
    assert.equal(
      img.layers.map((l) => l.digest),
      [sha(l1), sha(l2), sha(l1)],
    );
    assert.is(img.manifest.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar');
    await validate(img, store.blobs);
  } finally {
    await cleanup();
  }
});

const hostileCases: { name: string; entries: Parameters<typeof writeTar>[1]; error: RegExp }[] = [
  { name: 'dot-dot member', entries: [{ name: '../evil', body: 'x' }], error: /hostile archive member/ },
  { name: 'absolute member', entries: [{ name: '/etc/evil', body: 'x' }], error: /hostile archive member/ },
  {
    name: 'dot-dot inside blobs',
    entries: [{ name: 'blobs/sha256/../../../evil', body: 'x' }],
    error: /hostile archive member/,
  },
  {
    name: 'symlink out of the archive',
    entries: [{ name: 'x/layer.tar', type: 'symlink', linkname: '/etc/passwd' }],
    error: /links outside/,
  },
  {
    name: 'relative symlink escaping',
    entries: [{ name: 'x/layer.tar', type: 'symlink', linkname: '../../etc/passwd' }],
    error: /links outside/,
  },
  { name: 'bad blob name', entries: [{ name: 'blobs/sha256/zz', body: 'x' }], error: /blobs\/sha256\/<64 hex>/ },
  {
    name: 'blob not matching its name',
    entries: [{ name: `blobs/sha256/${sha('good').slice(7)}`, body: 'evil' }],
    error: /digest mismatch/,
  },
  { name: 'no index.json nor manifest.json', entries: [{ name: 'hello', body: 'x' }], error: /neither an OCI archive/ },
];
for (const c of hostileCases) {
  test(`archive.load rejects: ${c.name}`, async () => {
    const { store, dir, cleanup } = await tempStore();
    try {
      const file = join(dir, 'bad.tar');
      await writeTar(file, c.entries);
      await archive.load(store, file).then(
        () => assert.unreachable('load should fail'),
        (e: Error) => {
          assert.instance(e, StoreError);
          assert.match(e.message, c.error);
        },
      );
      assert.equal(await store.blobs.list(), [], 'nothing unverified became visible');
      assert.equal(await store.tags.list(), []);
    } finally {
      await cleanup();
    }
  });
}

// --- A real dockerd (from @tsbuild/testkit) -------------------------------------------------------
test('docker: `docker load` accepts --format docker (gzip layers); `docker save` output loads back', async () => {
  const dk = await tempRoot('ls-dockerd-');
  let d: Awaited<ReturnType<typeof startDockerd>>;
  try {
    d = await startDockerd(dk.dir);
  } catch (e) {
    await dk.cleanup();
    throw e;
  }
  if (typeof d === 'string') {
    await dk.cleanup();
    return skip(`no private dockerd: ${d}`);
  }
  const { store, dir, cleanup } = await tempStore();
  try {
    const img = await sampleImage(store);
    const file = join(dir, 'docker.tar');
    await archive.write(store, [{ image: img, name: 'tsbuild-test/app:1' }], file, { format: 'docker' });
    const out = execFileSync('docker', ['-H', d.host, 'load', '-i', file], { encoding: 'utf8' });
    assert.match(out, /Loaded image: tsbuild-test\/app:1/);
    const [inspect] = JSON.parse(
      execFileSync('docker', ['-H', d.host, 'image', 'inspect', 'tsbuild-test/app:1'], { encoding: 'utf8' }),
    );
    assert.is(inspect.Id, img.configDigest, 'docker image id = our config digest');
    assert.equal(inspect.Config.Cmd, ['/bin/sh']);
    assert.equal(inspect.Config.Healthcheck.Test, ['CMD', 'true']);
    assert.equal(inspect.Config.OnBuild, ['RUN echo hi']);
    assert.is(inspect.Config.StopSignal, 'SIGTERM');
    assert.equal(inspect.RootFS.Layers, img.config.rootfs.diff_ids);

    // And back: docker save (dockerd 20.10 writes the old v1.2 format) loads into a fresh store.
    const saved = join(dir, 'saved.tar');
    execFileSync('docker', ['-H', d.host, 'save', '-o', saved, 'tsbuild-test/app:1']);
    const other = await Store.open(join(dir, 'other'));
    const loaded = await archive.load(other, saved);
    assert.equal(loaded[0].names, ['docker.io/tsbuild-test/app:1']);
    const back = (await other.images.get('tsbuild-test/app:1'))!;
    assert.is(back.configDigest, img.configDigest, 'same image id after docker round trip');
    await validate(back, other.blobs);
    const ver = execFileSync('docker', ['-H', d.host, 'version', '--format', '{{.Server.Version}}'], {
      encoding: 'utf8',
    }).trim();
    console.log(
      `  docker ${ver}: load of our archive ok, docker save ` +
        `(${(await listTar(saved)).some((n) => n.endsWith('/layer.tar')) ? 'old <id>/layer.tar' : 'new blobs/'} ` +
        `format) loaded back`,
    );
  } finally {
    await d.stop();
    await cleanup();
    await dk.cleanup();
  }
});

test.run();
