// Deferred compression over the wire (compressed.ts + remote.push's image source): layers stored as
// plain tars are compressed, hashed and uploaded in one pass; a stream broken by the network falls
// back to the blob made in the store; a damaged plain layer never completes an upload.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as remote from '../src/remote/index.js';
import { Store } from '../src/store.js';
import { compressedImage, layerCodec } from '../src/compressed.js';
import { MediaType, type Compression, type Image, type Layer } from '../src/types.js';
import { noise, sha256, skopeo, tar } from './helpers/registry-image.js';
import { withRegistry } from './helpers/registry-suite.js';

const test = suite('remote: deferred compression');
const opts = {
  credentials: remote.noCredentials,
  retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 50 },
  timeoutMs: 10_000,
};
const env = withRegistry(test);
const uploads = /\/blobs\/uploads\//;

/** A store holding an image of plain-tar layers (as a build stores them), 600 kB of noise and 400 kB of text. */
async function plainImage(seed: number): Promise<{ store: Store; image: Image }> {
  const store = await Store.open(env.tmp('tsbuild-deferred-'));
  const layers: Layer[] = [];
  const text = Buffer.from('compressible text, line after line\n'.repeat(12_000));
  for (const [i, data] of [noise(600_000, seed), text].entries()) {
    const t = tar([{ name: `l${i}/data`, data }]);
    const { digest, size } = await store.blobs.put(t);
    layers.push({ digest, diffID: digest, size, mediaType: MediaType.OciLayer });
  }
  const config = {
    architecture: 'amd64',
    os: 'linux',
    created: '2024-01-01T00:00:00Z',
    rootfs: { type: 'layers' as const, diff_ids: layers.map((l) => l.diffID) },
  };
  return { store, image: await store.images.write({ config, layers }) };
}

const push = (store: Store, image: Image, ref: string, compression: Compression = 'gzip') =>
  remote.push(store.blobs, { image, compression, codec: layerCodec(store) }, ref, opts);

test('a stream the network breaks falls back to the store; same digest as another store makes', async () => {
  const { store, image } = await plainImage(1);
  // The reference: the same image compressed in a fresh store, for an export.
  const other = await plainImage(1);
  const expected = (await compressedImage(other.store, other.image, 'gzip')).image.manifestDigest;

  env.proxy.resetCounters();
  env.proxy.setRules([{ method: 'PATCH', path: uploads, nth: 1, fault: { kind: 'reset-upload', afterBytes: 20_000 } }]);
  const ref = `${env.proxy.host}/deferred/broken:1`;
  const res = await push(store, image, ref);
  env.proxy.setRules([]);
  assert.is(env.proxy.fired.length, 1, 'the fault fired');
  assert.is(res.descriptor.digest, expected);
  assert.ok(res.stats.layersCompressed >= 2, `compressed ${res.stats.layersCompressed}`);
  const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${env.reg.host}/deferred/broken:1`]);
  assert.is(sha256(raw), expected);
  const manifest = JSON.parse(raw);
  assert.equal(
    manifest.layers.map((l: { mediaType: string }) => l.mediaType),
    [MediaType.OciLayerGzip, MediaType.OciLayerGzip],
  );
  assert.is(manifest.config.digest, image.configDigest, 'the image id does not change');
  // skopeo re-reads every blob against its digest.
  await skopeo([
    '--insecure-policy',
    'copy',
    '--src-tls-verify=false',
    `docker://${env.reg.host}/deferred/broken:1`,
    `oci:${env.tmp('tsbuild-oci-')}:x`,
  ]);
  assert.equal(
    readdirSync(join(store.root, 'tmp')).filter((n) => n.startsWith('ingest-')),
    [],
    'no temp left',
  );

  // Remembered: pushing again (elsewhere) compresses nothing; zstd is another blob, made once.
  const again = await push(store, image, `${env.reg.host}/deferred/again:1`);
  assert.is(again.stats.layersCompressed, 0);
  assert.is(again.descriptor.digest, expected);
  const zstd = await push(store, image, `${env.reg.host}/deferred/zstd:1`, 'zstd');
  assert.is(zstd.stats.layersCompressed, 2);
  assert.is((await push(store, image, `${env.reg.host}/deferred/zstd:2`, 'zstd')).stats.layersCompressed, 0);
  const none = await push(store, image, `${env.reg.host}/deferred/none:1`, 'none');
  assert.is(none.descriptor.digest, image.manifestDigest, 'none pushes the stored manifest');
});

test('a plain layer that no longer matches its digest never completes an upload', async () => {
  const { store, image } = await plainImage(2);
  const file = store.blobs.path(image.layers[0].digest);
  const bytes = readFileSync(file);
  bytes[bytes.length - 2000] ^= 0xff;
  chmodSync(file, 0o644);
  writeFileSync(file, bytes);
  const ref = `${env.reg.host}/deferred/corrupt:1`;
  const err = await push(store, image, ref).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.ok(err, 'the push failed');
  assert.match(err.message, `layer blob ${image.layers[0].digest} is corrupt`);
  await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]).then(
    () => assert.unreachable('the registry has the manifest'),
    () => {},
  );
  assert.equal(
    readdirSync(join(store.root, 'tmp')).filter((n) => n.startsWith('ingest-')),
    [],
    'no temp left',
  );
});

test('early uploads: each layer compressed once, the push joins them; once closed, none start', async () => {
  const { store, image } = await plainImage(3);
  const expected = (await compressedImage((await plainImage(3)).store, image, 'gzip')).image.manifestDigest;
  const codec = layerCodec(store);
  const ref = `${env.proxy.host}/deferred/early:1`;
  const landed: string[] = [];
  const early = remote.startUploads(store.blobs, ref, { ...opts, onUploaded: (e) => landed.push(e.digest) });
  env.proxy.resetCounters();
  // As `build --push` does: the first layer as soon as it exists, then the push of the whole image.
  const first = await early.layer(image.layers[0], 'gzip', codec);
  assert.equal(landed, [first.digest], 'the first layer is in the registry before the push');
  assert.not.ok(
    env.proxy.requests.some((r) => r.path.includes('/manifests/')),
    'and no manifest',
  );
  const res = await remote.push(store.blobs, { image, compression: 'gzip', codec }, ref, {
    ...opts,
    client: early.client,
    uploads: early,
  });
  assert.is(res.descriptor.digest, expected, 'the same manifest as a push from a fresh store');
  assert.is(early.stats.layersCompressed, 2, 'each layer compressed once');
  const posts = env.proxy.requests.filter((r) => r.method === 'POST' && uploads.test(r.path)).length;
  assert.is(posts, 3, 'two layers and the config, each uploaded once');

  // A closed Uploads (a failed build) starts nothing more.
  const other = await plainImage(4);
  const closed = remote.startUploads(other.store.blobs, `${env.proxy.host}/deferred/closed:1`, opts);
  await closed.close();
  env.proxy.resetCounters();
  await closed.layer(other.image.layers[0], 'gzip', layerCodec(other.store)).then(
    () => assert.unreachable('a closed Uploads uploaded'),
    (e: Error) => assert.match(e.message, 'closed'),
  );
  assert.is(env.proxy.requests.length, 0, 'no request');
});

test.run();
