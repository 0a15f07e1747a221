// Directory → layer → unpack → the same directory, for every kind of entry and every compression.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeLayer, unpackLayer } from '../src/layer/index.js';
import { MediaType, type Compression } from '../src/types.js';
import { Store } from '../src/store.js';
import { TempBlobs } from './helpers/temp-blobs.js';
import { describe } from './helpers/tree.js';
import { makeEveryKind } from './helpers/every-kind.js';

const work = mkdtempSync(join(tmpdir(), 'layer-rt-'));
const blobs = new TempBlobs(join(work, 'blobs'));
const src = join(work, 'src');
makeEveryKind(src);
const expected = describe(src, { mtime: true, dirMtime: true });

const cases: { compression: Compression; mediaType: string; magic: string }[] = [
  { compression: 'gzip', mediaType: MediaType.OciLayerGzip, magic: '1f8b' },
  { compression: 'zstd', mediaType: MediaType.OciLayerZstd, magic: '28b52ffd' },
  { compression: 'none', mediaType: MediaType.OciLayer, magic: '' },
];

for (const c of cases) {
  test(`round trip, ${c.compression}: every kind of entry comes back identical`, async () => {
    const layer = await writeLayer(blobs, src, { compression: c.compression });
    assert.is(layer.mediaType, c.mediaType);
    const blob = await blobs.read(layer.digest);
    assert.is(layer.size, blob.length);
    if (c.magic) assert.is(blob.subarray(0, c.magic.length / 2).toString('hex'), c.magic);
    const dest = join(work, `out-${c.compression}`);
    execFileSync('mkdir', [dest]);
    const r = await unpackLayer(blobs.open(layer.digest), layer.mediaType, dest, {
      allowDevices: true,
      diffID: layer.diffID,
    });
    assert.is(r.diffID, layer.diffID);
    assert.equal(describe(dest, { mtime: true, dirMtime: true }), expected);
  });
}

test(
  'independent consumers: gzip -t accepts the blob, gunzip|sha256 is the diffID, GNU tar lists every ' + 'entry',
  async () => {
    const layer = await writeLayer(blobs, src, { compression: 'gzip' });
    const path = blobs.path(layer.digest);
    execFileSync('gzip', ['-t', path]);
    const sha = execFileSync('sh', ['-c', `gunzip -c '${path}' | sha256sum`])
      .toString()
      .split(' ')[0];
    assert.is(`sha256:${sha}`, layer.diffID);
    const listing = execFileSync('tar', ['-tzf', path]).toString().split('\n').filter(Boolean);
    assert.equal(listing.map((l) => l.replace(/\/$/, '')).sort(), expected.map((e) => e.path).sort());
    // GNU tar extracts it the same way (xattrs included) as our unpacker does.
    const gnu = join(work, 'gnu');
    execFileSync('mkdir', [gnu]);
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--same-owner', '-xpzf', path, '-C', gnu]);
    assert.equal(describe(gnu), describe(src));
  },
);

test('every compression has the same diffID', async () => {
  const ids = new Set<string>();
  for (const c of cases) ids.add((await writeLayer(blobs, src, { compression: c.compression })).diffID);
  assert.is(ids.size, 1);
});

// An uncompressed layer's tar chunks are refilled once the ingest has written them: a chunk handed
// back too early would put later bytes in the blob. Files of many chunks, through both blob stores.
const many = join(work, 'many');
mkdirSync(many);
for (const [name, size] of [
  ['a', 3 << 20],
  ['b', (5 << 20) + 777],
  ['c', 100],
] as const)
  writeFileSync(join(many, name), randomBytes(size));
for (const [name, make] of [
  ['the test blob store', async () => new TempBlobs(join(work, 'blobs-many'))],
  ['the store', async () => (await Store.open(join(work, 'store-many'))).blobs],
] as const) {
  test(`none, files of many chunks, ${name}: the blob is the tar of the files, its digest the diffID`, async () => {
    const store = await make();
    const layer = await writeLayer(store, many, { compression: 'none' });
    assert.is(layer.diffID, layer.digest);
    const blob = await store.read(layer.digest);
    assert.is(`sha256:${createHash('sha256').update(blob).digest('hex')}`, layer.digest);
    assert.ok(blob.length > 8 << 20);
    // Every file comes back as it was (unpackLayer also checks the diffID as it reads).
    const dest = join(work, `many-out-${name.replace(/ /g, '-')}`);
    mkdirSync(dest);
    await unpackLayer(store.open(layer.digest), layer.mediaType, dest, { diffID: layer.diffID });
    for (const f of ['a', 'b', 'c']) assert.ok(readFileSync(join(dest, f)).equals(readFileSync(join(many, f))), f);
  });
}

test('none: a file that shrinks while its layer is written fails it, with no blob and no temp file left', async () => {
  const store = await Store.open(join(work, 'store-shrink'));
  const file = (path: string, size: number, bytes: Buffer) => ({
    path,
    type: 'file' as const,
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: 1,
    size,
    open: () => Readable.from([bytes]),
  });
  // Chunks of the first file are being written when the second turns out short.
  const big = randomBytes(3 << 20);
  const entries = [file('big', big.length, big), file('short', 1000, Buffer.alloc(10))];
  const err = await writeLayer(store.blobs, entries, { compression: 'none' }).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.match(err?.message ?? 'no error', /shrank/);
  assert.equal(readdirSync(join(work, 'store-shrink', 'blobs', 'sha256')), []);
  assert.equal(
    readdirSync(join(work, 'store-shrink', 'tmp')).filter((n) => n.startsWith('ingest-')),
    [],
  );
});

test.after(() => {
  rmSync(work, { recursive: true, force: true });
});
test.run();
