// Forced compression (BuildKit's force-compression=true): a layer the store holds compressed otherwise is
// decompressed, checked against its diffID, compressed again and remembered per (diffID, codec, level).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { materialiseLayer, needsCompression } from '../src/compressed.js';
import { MediaType, type Layer } from '../src/types.js';
import { noise, tar } from './helpers/registry-image.js';
import { sha, tempStore } from './storekit.js';

/** A layer stored as gzip (as a pull stores one); `diffID` is what its image claims. */
async function gzipLayer(store: Awaited<ReturnType<typeof tempStore>>['store'], plain: Buffer, diffID = sha(plain)) {
  const { digest, size } = await store.blobs.put(gzipSync(plain));
  return { digest, size, diffID, mediaType: MediaType.OciLayerGzip } satisfies Layer;
}

const text = Buffer.from('a line of text that compresses\n'.repeat(20_000));
const plain = tar([
  { name: 'noise', data: noise(300_000, 7) },
  { name: 'text', data: text },
]);

test('needsCompression: without force only plain layers; with it every layer not in the asked compression', () => {
  const rows: [string, 'gzip' | 'zstd' | 'none', boolean, boolean][] = [
    [MediaType.OciLayer, 'zstd', false, true],
    [MediaType.OciLayerGzip, 'zstd', false, false],
    [MediaType.OciLayerGzip, 'zstd', true, true],
    [MediaType.OciLayerGzip, 'gzip', true, false],
    [MediaType.OciLayerZstd, 'zstd', true, false],
    [MediaType.OciLayerGzip, 'none', false, false],
    [MediaType.OciLayerGzip, 'none', true, true],
    [MediaType.OciLayer, 'none', true, false],
  ];
  for (const [mediaType, c, force, want] of rows)
    assert.is(needsCompression({ mediaType }, c, force), want, `${mediaType} ${c} force=${force}`);
});

test('a gzip layer forced to zstd: decompresses to its diffID, remembered per level', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const layer = await gzipLayer(store, plain);
    assert.equal(await materialiseLayer(store, layer, 'zstd'), { layer, compressed: false }, 'not forced');
    const z3 = await materialiseLayer(store, layer, 'zstd', { force: true });
    assert.ok(z3.compressed);
    assert.is(z3.layer.mediaType, MediaType.OciLayerZstd);
    assert.is(z3.layer.diffID, layer.diffID);
    const unzstd = execFileSync('zstd', ['-dc'], { input: await store.blobs.read(z3.layer.digest) });
    assert.is(sha(unzstd), layer.diffID);
    // Remembered: the same level (3 said, or 0: zstd's default) compresses nothing; another level is another blob.
    for (const level of [undefined, 0, 3])
      assert.equal(await materialiseLayer(store, layer, 'zstd', { force: true, level }), { ...z3, compressed: false });
    const z19 = await materialiseLayer(store, layer, 'zstd', { force: true, level: 19 });
    assert.ok(z19.compressed, 'level 19 is not the level 3 blob');
    assert.is.not(z19.layer.digest, z3.layer.digest);
    // Forced to uncompressed: the tar itself, its digest the diffID.
    const none = await materialiseLayer(store, layer, 'none', { force: true });
    assert.is(none.layer.digest, layer.diffID);
    assert.is(none.layer.mediaType, MediaType.OciLayer);
  } finally {
    await cleanup();
  }
});

test('a gzip layer whose content is not its diffID is refused, and nothing is remembered', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const layer = await gzipLayer(store, plain, sha('something else'));
    for (let i = 0; i < 2; i++) {
      const err = await materialiseLayer(store, layer, 'zstd', { force: true }).then(
        () => undefined,
        (e: Error) => e,
      );
      assert.match(String(err?.message), `decompresses to ${sha(plain)}, not its diffID ${layer.diffID}`);
    }
  } finally {
    await cleanup();
  }
});

test.run();
