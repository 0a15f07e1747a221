// The registry client against a real docker-registry on 127.0.0.1, checked with skopeo.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as remote from '../src/remote/index.js';
import { CacheMediaType } from '../src/remote/artifact.js';
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Manifest } from '../src/types.js';
import { makeImage, sha256, skopeo, type TestImage } from './helpers/registry-image.js';
import { withRegistry } from './helpers/registry-suite.js';

const test = suite('remote: push/pull against docker-registry');
const anonymous = remote.noCredentials;
const quiet = { credentials: anonymous, retry: { baseDelayMs: 20, maxDelayMs: 200 } };

const env = withRegistry(test);
const { store, tmp } = env;

async function verifyWithSkopeo(host: string, repo: string, tag: string, img: TestImage): Promise<void> {
  const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${host}/${repo}:${tag}`]);
  assert.is(sha256(raw), img.manifestDigest, 'skopeo sees our manifest bytes');
  const info = JSON.parse(await skopeo(['inspect', '--tls-verify=false', `docker://${host}/${repo}:${tag}`]));
  assert.equal(
    info.Layers,
    img.layers.map((l) => l.digest),
  );
  const dir = tmp('tsbuild-oci-');
  await skopeo([
    '--insecure-policy',
    'copy',
    '--src-tls-verify=false',
    `docker://${host}/${repo}:${tag}`,
    `oci:${dir}:${tag}`,
  ]);
  for (const d of [img.config.digest, ...img.layers.map((l) => l.digest)]) {
    const file = path.join(dir, 'blobs', 'sha256', d.slice(7));
    assert.ok(existsSync(file), `skopeo copied ${d}`);
    assert.is(sha256(readFileSync(file)), d);
  }
}

const pushCases: Array<{ name: string; sizes: number[]; docker?: boolean; chunk?: boolean }> = [
  { name: 'OCI image, two small gzip layers', sizes: [20_000, 300_000] },
  { name: 'docker schema2 image', sizes: [50_000], docker: true },
  { name: 'chunked upload (threshold 256 KiB, chunks 200 KiB)', sizes: [900_000, 10_000], chunk: true },
  { name: 'image without layers', sizes: [] },
];

for (const [i, c] of pushCases.entries()) {
  test(`push ${c.name}; skopeo inspect and copy it`, async () => {
    const { blobs } = store();
    const img = await makeImage(blobs, c.sizes, 10 + i, c.docker);
    const repo = `push/case${i}`;
    const res = await remote.push(blobs, { manifestDigest: img.manifestDigest }, `${env.reg.host}/${repo}:v1`, {
      ...quiet,
      ...(c.chunk ? { chunkThreshold: 256 * 1024, chunkSize: 200 * 1024 } : {}),
    });
    assert.is(res.descriptor.digest, img.manifestDigest);
    assert.is(res.descriptor.mediaType, c.docker ? MediaType.DockerManifest : MediaType.OciManifest);
    assert.is(res.stats.blobsUploaded, c.sizes.length + 1);
    await verifyWithSkopeo(env.reg.host, repo, 'v1', img);
  });
}

test('an image pushed by skopeo copy is pulled and every blob verified', async () => {
  const src = store();
  const img = await makeImage(src.blobs, [120_000, 5_000, 70_000], 42);
  // An OCI layout made from our store's blobs, copied into the registry by skopeo.
  const layout = tmp('tsbuild-layout-');
  const { mkdirSync, writeFileSync, copyFileSync } = await import('node:fs');
  mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  for (const d of [img.manifestDigest, img.config.digest, ...img.layers.map((l) => l.digest)]) {
    copyFileSync(src.blobs.path(d), path.join(layout, 'blobs', 'sha256', d.slice(7)));
  }
  writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: MediaType.OciManifest,
          digest: img.manifestDigest,
          size: img.manifestBytes.length,
          annotations: { 'org.opencontainers.image.ref.name': 'v1' },
        },
      ],
    }),
  );
  await skopeo([
    '--insecure-policy',
    'copy',
    '--dest-tls-verify=false',
    `oci:${layout}:v1`,
    `docker://${env.reg.host}/from-skopeo/app:v1`,
  ]);

  const dst = store();
  const seen: number[] = [];
  const pulled = await remote.pull(dst.blobs, `${env.reg.host}/from-skopeo/app:v1`, {
    ...quiet,
    onLayer: (_l, i) => {
      seen.push(i);
    },
  });
  assert.is(pulled.manifestDigest, img.manifestDigest);
  assert.is(pulled.configDigest, img.config.digest);
  assert.equal(
    pulled.layers.map((l) => l.digest),
    img.layers.map((l) => l.digest),
  );
  assert.equal(
    pulled.layers.map((l) => l.diffID),
    pulled.config.rootfs.diff_ids,
  );
  assert.equal([...seen].sort(), [0, 1, 2]);
  for (const d of [img.manifestDigest, img.config.digest, ...img.layers.map((l) => l.digest)]) {
    assert.is(sha256(await dst.blobs.read(d)), d, `blob ${d} verified`);
  }
  // By digest, and a second pull finds everything present.
  const again = await remote.pull(dst.blobs, `${env.reg.host}/from-skopeo/app@${img.manifestDigest}`, quiet);
  assert.is(again.stats.blobsDownloaded, 0);
  assert.is(again.stats.blobsSkipped, 4);
});

// A pulled image goes through validate() (without re-reading its layers, which were verified as they came):
// what the registry serves must be an image a consumer can use, not only well-formed JSON.
const brokenImages: [what: string, breakIt: (m: Manifest, c: ImageConfig) => void, want: RegExp][] = [
  ['a config without os/architecture', (_m, c) => void delete (c as Partial<ImageConfig>).os, /lacks architecture\/os/],
  [
    'rootfs.type other than layers',
    (_m, c) => void ((c.rootfs as { type: string }).type = 'tarballs'),
    /rootfs.type is tarballs/,
  ],
  ['a layer media type no runtime reads', (m) => void (m.layers[0].mediaType = 'text/plain'), /mediaType text\/plain/],
  // Checked when the config lands, while the layers download beside it.
  ['fewer diff_ids than layers', (_m, c) => void (c.rootfs.diff_ids = []), /config lists 0 diff_ids for 1 layers/],
];
for (const [i, [what, breakIt, want]] of brokenImages.entries())
  test(`pull rejects an image with ${what}`, async () => {
    const { blobs } = store();
    const img = await makeImage(blobs, [3_000], 90 + i);
    const manifest = structuredClone(img.manifest);
    const config = (await blobs.readJSON(img.config.digest)) as ImageConfig;
    breakIt(manifest, config);
    const c = await blobs.put(JSON.stringify(config));
    manifest.config = { ...manifest.config, digest: c.digest, size: c.size };
    const m = await blobs.put(JSON.stringify(manifest));
    const ref = `${env.reg.host}/broken/case${i}:v1`;
    await remote.push(blobs, { manifestDigest: m.digest }, ref, quiet);
    const dst = store();
    try {
      await remote.pull(dst.blobs, ref, quiet);
      assert.unreachable('the pull should have failed');
    } catch (e) {
      assert.match((e as Error).message, want);
    }
  });

// A registry that serves other bytes than the digest names (here: its stored blob file altered after the
// push; distribution serves the file as it is): the pull fails naming the blob, and of what it sent only
// the blobs that matched their digests are in the store (they download side by side with the bad one).
const tampered: [what: string, pick: (img: TestImage) => Descriptor, alter: (b: Buffer) => Buffer, want: RegExp][] = [
  ['a flipped byte in the big layer', (img) => img.layers[0], (b) => flip(b, b.length >> 1), /digest mismatch/],
  ['a flipped last byte of a small layer', (img) => img.layers[1], (b) => flip(b, b.length - 1), /digest mismatch/],
  ['a flipped byte in the config', (img) => img.config, (b) => flip(b, 2), /digest mismatch/],
  ['a layer one byte short', (img) => img.layers[0], (b) => b.subarray(0, b.length - 1), /says \d+ bytes|after \d+ of/],
  ['a layer one byte longer', (img) => img.layers[1], (b) => Buffer.concat([b, Buffer.from('x')]), /says|more bytes/],
];
function flip(b: Buffer, i: number): Buffer {
  const c = Buffer.from(b);
  c[i] ^= 0xff;
  return c;
}
for (const [i, [what, pick, alter, want]] of tampered.entries())
  test(`pull from a registry serving ${what}: fails naming the blob, nothing unverified stored`, async () => {
    const { blobs } = store();
    const img = await makeImage(blobs, [600_000, 2_000], 120 + i);
    const ref = `${env.reg.host}/tampered/case${i}:v1`;
    await remote.push(blobs, { manifestDigest: img.manifestDigest }, ref, quiet);
    const bad = pick(img);
    const file = path.join(
      env.reg.dir,
      'data/docker/registry/v2/blobs/sha256',
      bad.digest.slice(7, 9),
      bad.digest.slice(7),
      'data',
    );
    writeFileSync(file, alter(readFileSync(file)));
    const dst = store();
    try {
      await remote.pull(dst.blobs, ref, quiet);
      assert.unreachable('the pull should have failed');
    } catch (e) {
      assert.instance(e, remote.RegistryError);
      assert.match((e as Error).message, new RegExp(`pulling blob ${bad.digest}`));
      assert.match((e as Error).message, want);
    }
    assert.not.ok(await dst.blobs.has(bad.digest), 'the bad blob is not in the store');
    for (const d of await dst.blobs.list()) assert.is(sha256(readFileSync(dst.blobs.path(d))), d, `${d} verified`);
    assert.equal(readdirSync(path.join(dst.root, 'tmp')), [], 'no temp file left');
  });

test('a second push of the same image sends no layer bytes', async () => {
  const { blobs } = store();
  const img = await makeImage(blobs, [200_000, 100_000], 7);
  const ref = `${env.proxy.host}/again/app:1`;
  env.proxy.resetCounters();
  const first = await remote.push(blobs, { manifestDigest: img.manifestDigest }, ref, quiet);
  const firstBytes = env.proxy.bytesUp;
  assert.ok(firstBytes >= img.totalSize, `first push sent ${firstBytes} >= ${img.totalSize}`);
  assert.is(first.stats.bytesUploaded, img.totalSize - img.manifestBytes.length);
  env.proxy.resetCounters();
  const second = await remote.push(blobs, { manifestDigest: img.manifestDigest }, ref, quiet);
  assert.is(second.stats.blobsSkipped, 3);
  assert.is(second.stats.bytesUploaded, 0);
  assert.is(env.proxy.bytesUp, img.manifestBytes.length, 'only the manifest went up');
  assert.not.ok(
    env.proxy.requests.some((r) => r.method === 'PATCH' || (r.method === 'PUT' && r.path.includes('/blobs/'))),
  );
});

test('a push to a second repository mounts the blobs instead of uploading', async () => {
  const { blobs, root } = store();
  const img = await makeImage(blobs, [150_000, 60_000], 8);
  const locations = await remote.BlobLocations.load(path.join(root, 'remote', 'locations.json'));
  await remote.push(blobs, { manifestDigest: img.manifestDigest }, `${env.proxy.host}/mount/first:1`, {
    ...quiet,
    locations,
  });
  env.proxy.resetCounters();
  // A fresh load from disk: the record persists across processes.
  const again = await remote.BlobLocations.load(path.join(root, 'remote', 'locations.json'));
  const res = await remote.push(blobs, { manifestDigest: img.manifestDigest }, `${env.proxy.host}/mount/second:1`, {
    ...quiet,
    locations: again,
  });
  assert.is(res.stats.blobsMounted, 3);
  assert.is(res.stats.bytesUploaded, 0);
  assert.is(env.proxy.bytesUp, img.manifestBytes.length);
  assert.ok(
    env.proxy.requests.some((r) => r.method === 'POST' && r.status === 201),
    'mount answered 201',
  );
  await verifyWithSkopeo(env.proxy.host, 'mount/second', '1', img);
});

test('resolve picks the platform from an index', async () => {
  const { blobs } = store();
  const amd = await makeImage(blobs, [10_000], 21);
  const arm = await makeImage(blobs, [11_000], 22);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [
        {
          mediaType: MediaType.OciManifest,
          digest: amd.manifestDigest,
          size: amd.manifestBytes.length,
          platform: { os: 'linux', architecture: 'amd64' },
        },
        {
          mediaType: MediaType.OciManifest,
          digest: arm.manifestDigest,
          size: arm.manifestBytes.length,
          platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
        },
      ],
    }),
  );
  const put = await blobs.put(index);
  await remote.push(blobs, { manifestDigest: put.digest }, `${env.reg.host}/multi/app:1`, quiet);
  const cases: Array<[string | undefined, Digest | undefined]> = [
    [undefined, amd.manifestDigest],
    ['linux/arm64', arm.manifestDigest],
    ['linux/arm64/v8', arm.manifestDigest],
    ['linux/s390x', undefined],
  ];
  for (const [platform, want] of cases) {
    if (want) {
      const r = await remote.resolve(`${env.reg.host}/multi/app:1`, { ...quiet, platform });
      assert.is(r.descriptor.digest, want, String(platform));
      assert.is(r.index?.digest, put.digest);
    } else {
      try {
        await remote.resolve(`${env.reg.host}/multi/app:1`, { ...quiet, platform });
        assert.unreachable();
      } catch (err) {
        assert.instance(err, remote.RegistryError);
        assert.match((err as Error).message, /no manifest for linux\/s390x.*linux\/amd64, linux\/arm64\/v8/);
      }
    }
  }
  const pulled = await remote.pull(store().blobs, `${env.reg.host}/multi/app:1`, { ...quiet, platform: 'linux/arm64' });
  assert.is(pulled.manifestDigest, arm.manifestDigest);
});

test('errors name the manifest, the host and what the registry said', async () => {
  const cases: Array<[string, RegExp]> = [
    [
      `${env.reg.host}/nothing/here:1`,
      new RegExp(
        String.raw`fetching manifest 127\.0\.0\.1:\d+/nothing/here:1: ` +
          String.raw`127\.0\.0\.1:\d+ answered HTTP 404 (MANIFEST_UNKNOWN|NAME_UNKNOWN)`,
      ),
    ],
    [`${env.reg.host}/nothing/here@sha256:${'0'.repeat(64)}`, /nothing\/here@sha256:0{64}.*HTTP 404/],
  ];
  for (const [ref, re] of cases) {
    try {
      await remote.pull(store().blobs, ref, quiet);
      assert.unreachable();
    } catch (err) {
      assert.instance(err, remote.RegistryError);
      assert.is((err as remote.RegistryError).code, 'not-found');
      assert.match((err as Error).message, re);
    }
  }
  const refused = `127.0.0.1:1/x:1`;
  try {
    await remote.pull(store().blobs, refused, { ...quiet, retry: { attempts: 2, baseDelayMs: 1 } });
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /127\.0\.0\.1:1.*connection refused/);
  }
});

test('cache artifact: push records and layers, pull the records back', async () => {
  const { blobs } = store();
  const img = await makeImage(blobs, [30_000, 40_000], 31);
  const records = { version: 'x', steps: [{ key: 'sha256:abc', layer: img.layers[0].digest }] };
  const pushed = await remote.pushCache(
    blobs,
    `${env.reg.host}/cache/app:buildcache`,
    { records, layers: img.layers },
    quiet,
  );
  const raw = JSON.parse(
    await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${env.reg.host}/cache/app:buildcache`]),
  );
  assert.is(raw.artifactType, CacheMediaType.Artifact);
  assert.is(raw.config.mediaType, CacheMediaType.Config);
  const dst = store();
  const got = await remote.pullCache(dst.blobs, `${env.reg.host}/cache/app:buildcache`, quiet);
  assert.ok(got);
  assert.equal(got.records, records);
  assert.is(got.manifestDigest, pushed.descriptor.digest);
  assert.equal(
    got.layers.map((l) => l.digest),
    img.layers.map((l) => l.digest),
  );
  const stats = await remote.fetchBlobs(dst.blobs, `${env.reg.host}/cache/app`, got.layers, quiet);
  assert.is(stats.blobsDownloaded, 2);
  assert.is(await remote.pullCache(dst.blobs, `${env.reg.host}/cache/none:x`, quiet), undefined);
});

test.run();
