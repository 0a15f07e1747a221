// The same diff gives the same digest: creation order, inode numbers and readdir order
// never reach the output; nor does the way the bytes arrive at the gzip chunker.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeLayer, GZIP_CHUNK } from '../src/layer/index.js';
import { gzipChunks } from '../src/layer/compress.js';
import type { Compression, Entry } from '../src/types.js';
import { TempBlobs } from './helpers/temp-blobs.js';
import { makeEveryKind } from './helpers/every-kind.js';

const work = mkdtempSync(join(tmpdir(), 'layer-det-'));
const blobs = new TempBlobs(join(work, 'blobs'));
makeEveryKind(join(work, 'a'));
makeEveryKind(join(work, 'b'), { order: 'reverse' });
const SDE = 1_600_000_010;

for (const compression of ['gzip', 'zstd', 'none'] as Compression[]) {
  test(`same tree built in a different order → same digest (${compression})`, async () => {
    const a = await writeLayer(blobs, join(work, 'a'), { compression, sourceDateEpoch: SDE });
    const b = await writeLayer(blobs, join(work, 'b'), { compression, sourceDateEpoch: SDE });
    const a2 = await writeLayer(blobs, join(work, 'a'), { compression, sourceDateEpoch: SDE });
    assert.equal(b, a);
    assert.equal(a2, a);
  });
}

test('entries source: the same entries give the same digest; sourceDateEpoch clamps', async () => {
  const entries = (): Entry[] => [
    { path: 'd', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 2_000_000_000 },
    { path: 'd/f', type: 'file', mode: 0o644, uid: 1, gid: 2, mtime: 5, size: 3, open: () => Readable.from([Buffer.from('abc')]) },
  ];
  const x = await writeLayer(blobs, entries(), { sourceDateEpoch: 1000 });
  const y = await writeLayer(blobs, entries(), { sourceDateEpoch: 1000 });
  const z = await writeLayer(blobs, entries(), {});
  assert.equal(x, y);
  assert.is.not(z.diffID, x.diffID);
});

const payload = Buffer.concat([randomBytes(2 * GZIP_CHUNK + 12345), Buffer.alloc(3 * GZIP_CHUNK, 'z'), randomBytes(777)]);
const cuts: { name: string; pieces: () => Buffer[] }[] = [
  { name: 'one piece', pieces: () => [payload] },
  { name: '64 KiB pieces', pieces: () => Array.from({ length: Math.ceil(payload.length / 65536) }, (_, i) => payload.subarray(i * 65536, (i + 1) * 65536)) },
  { name: 'odd pieces', pieces: () => { const out: Buffer[] = []; for (let o = 0, n = 1; o < payload.length; o += n, n = (n * 7 + 3) % 300001) out.push(payload.subarray(o, o + n)); return out; } },
];

test('parallel gzip: output depends only on the bytes; it is valid multi-member gzip', async () => {
  const outs: string[] = [];
  for (const c of cuts) {
    const parts: Buffer[] = [];
    for await (const b of gzipChunks(Readable.from(c.pieces()))) parts.push(b);
    const gz = Buffer.concat(parts);
    assert.ok(gunzipSync(gz).equals(payload), c.name);
    outs.push(createHash('sha256').update(gz).digest('hex'));
    if (c === cuts[0]) {
      // fixed header: no mtime, no name, OS=unix; one member per chunk
      assert.is(gz.subarray(0, 10).toString('hex'), '1f8b0800000000000403');
      const f = join(work, 'p.gz');
      writeFileSync(f, gz);
      execFileSync('gzip', ['-t', f]);
      const sha = execFileSync('sh', ['-c', `gunzip -c '${f}' | sha256sum`]).toString().split(' ')[0];
      assert.is(sha, createHash('sha256').update(payload).digest('hex'));
    }
  }
  assert.is(new Set(outs).size, 1);
});

test.after(() => { rmSync(work, { recursive: true, force: true }); });
test.run();
