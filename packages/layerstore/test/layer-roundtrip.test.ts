// Directory → layer → unpack → the same directory, for every kind of entry and every compression.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeLayer, unpackLayer } from '../src/layer/index.js';
import { MediaType, type Compression } from '../src/types.js';
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

test.after(() => {
  rmSync(work, { recursive: true, force: true });
});
test.run();
