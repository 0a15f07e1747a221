// The same diff gives the same digest: creation order, inode numbers and readdir order
// never reach the output; nor does the way the bytes arrive at the gzip chunker.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeLayer, compareEntryPaths, entriesFromDirectory, entryOrderKey, tarStream } from '../src/layer/index.js';
import { gzipSync } from 'node:zlib';
import {
  GZIP_CHUNK,
  GZIP_CHUNK as CHUNK,
  SAMPLE_MIN,
  STORED_BLOCK,
  gzipChunks,
  storedMember,
  storesChunk,
} from '../src/layer/gzip.js';
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
    {
      path: 'd/f',
      type: 'file',
      mode: 0o644,
      uid: 1,
      gid: 2,
      mtime: 5,
      size: 3,
      open: () => Readable.from([Buffer.from('abc')]),
    },
  ];
  const x = await writeLayer(blobs, entries(), { sourceDateEpoch: 1000 });
  const y = await writeLayer(blobs, entries(), { sourceDateEpoch: 1000 });
  const z = await writeLayer(blobs, entries(), {});
  assert.equal(x, y);
  assert.is.not(z.diffID, x.diffID);
});

const payload = Buffer.concat([
  randomBytes(2 * GZIP_CHUNK + 12345),
  Buffer.alloc(3 * GZIP_CHUNK, 'z'),
  randomBytes(777),
]);
const cuts: { name: string; pieces: () => Buffer[] }[] = [
  { name: 'one piece', pieces: () => [payload] },
  {
    name: '64 KiB pieces',
    pieces: () =>
      Array.from({ length: Math.ceil(payload.length / 65536) }, (_, i) => payload.subarray(i * 65536, (i + 1) * 65536)),
  },
  {
    name: 'odd pieces',
    pieces: () => {
      const out: Buffer[] = [];
      for (let o = 0, n = 1; o < payload.length; o += n, n = (n * 7 + 3) % 300001) out.push(payload.subarray(o, o + n));
      return out;
    },
  },
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
      const sha = execFileSync('sh', ['-c', `gunzip -c '${f}' | sha256sum`])
        .toString()
        .split(' ')[0];
      assert.is(sha, createHash('sha256').update(payload).digest('hex'));
    }
  }
  assert.is(new Set(outs).size, 1);
});

test('the tar writer fills fixed-size chunks: the same bytes whatever the chunk size', async () => {
  const dir = join(work, 'chunked');
  mkdirSync(dir);
  writeFileSync(join(dir, 'a'), randomBytes(1000));
  writeFileSync(join(dir, 'b'), randomBytes(2 * GZIP_CHUNK + 7));
  writeFileSync(join(dir, 'c'), '');
  const collect = async (chunk?: number) => {
    const out: Buffer[] = [];
    for await (const b of tarStream(entriesFromDirectory(dir), { chunk })) out.push(b);
    return out;
  };
  const whole = Buffer.concat(await collect());
  for (const chunk of [512, 65536, 1000]) {
    const pieces = await collect(chunk);
    assert.ok(Buffer.concat(pieces).equals(whole), `chunk ${chunk}`);
    assert.ok(
      pieces.slice(0, -1).every((p) => p.length === chunk),
      `every chunk but the last has ${chunk} bytes`,
    );
    assert.ok(pieces.at(-1)!.length <= chunk && pieces.at(-1)!.length > 0);
  }
  // GNU tar reads it
  const f = join(work, 'chunked.tar');
  writeFileSync(f, whole);
  assert.equal(execFileSync('tar', ['-tf', f]).toString().trim().split('\n').sort(), ['a', 'b', 'c']);
});

test('entryOrderKey sorts paths as compareEntryPaths does', () => {
  const paths = [
    'a',
    'a/b',
    'a.b',
    'a-b',
    'ab',
    'a/b/c',
    'a/bc',
    'a/b.c',
    'b',
    'B',
    'é',
    'e',
    'z/é/x',
    'z/e',
    'z',
    '\u{1F600}',
    '\uFFFD',
    'a b',
  ];
  const byCompare = [...paths].sort(compareEntryPaths);
  const byKey = [...paths].sort((x, y) => Buffer.compare(entryOrderKey(x), entryOrderKey(y)));
  assert.equal(byKey, byCompare);
});

// The stored-chunk rule (src/layer/gzip.ts): which chunks are stored, and that stored members are
// valid gzip for every consumer, whatever their length.
const WORDS =
  'const layer = await store.blobs.ingest(); return digest of the tar stream for each file in the tree'.split(' ');
const text = (n: number): Buffer => {
  const b = Buffer.alloc(n);
  const r = randomBytes(n);
  for (let o = 0, i = 0; o < n; i++) o += b.write(WORDS[r[i]! % WORDS.length]! + (r[i]! & 8 ? ' ' : '\n'), o);
  return b;
};
const rules: { name: string; chunk: () => Buffer; stored: boolean }[] = [
  { name: 'random bytes', chunk: () => randomBytes(CHUNK), stored: true },
  {
    name: 'already gzipped data',
    chunk: () => gzipSync(text(4 * CHUNK), { level: 9 }).subarray(0, CHUNK),
    stored: true,
  },
  { name: 'text', chunk: () => text(CHUNK), stored: false },
  { name: 'zeros', chunk: () => Buffer.alloc(CHUNK), stored: false },
  {
    name: 'half random, half text',
    chunk: () => Buffer.concat([randomBytes(CHUNK / 2), text(CHUNK / 2)]),
    stored: false,
  },
  {
    name: 'random with its last eighth text',
    chunk: () => Buffer.concat([randomBytes((CHUNK * 7) / 8), text(CHUNK / 8)]),
    stored: false,
  },
  { name: 'random, shorter than SAMPLE_MIN', chunk: () => randomBytes(SAMPLE_MIN - 1), stored: false },
  { name: 'random, exactly SAMPLE_MIN', chunk: () => randomBytes(SAMPLE_MIN), stored: true },
  { name: 'random, two stored blocks exactly', chunk: () => randomBytes(2 * STORED_BLOCK), stored: true },
  { name: 'random, two stored blocks and a byte', chunk: () => randomBytes(2 * STORED_BLOCK + 1), stored: true },
];

for (const r of rules) {
  test(`stored chunks: ${r.name} → ${r.stored ? 'stored' : 'compressed'}; every gzip reader reads it`, async () => {
    const chunk = r.chunk();
    assert.is(await storesChunk(chunk), r.stored);
    const parts: Buffer[] = [];
    for await (const b of gzipChunks(Readable.from([chunk]), { chunk: CHUNK })) parts.push(b);
    const gz = Buffer.concat(parts);
    assert.is(gz.subarray(0, 10).toString('hex'), '1f8b0800000000000403');
    // BTYPE of the first deflate block: 00 stored, 01/10 compressed
    if (r.stored) assert.is((gz[10]! >> 1) & 3, 0, 'BTYPE 00: stored');
    assert.ok(gz.equals(r.stored ? storedMember(chunk) : gzipSync(chunk, { level: 1 })));
    assert.ok(gunzipSync(gz).equals(chunk));
    const f = join(work, 'r.gz');
    writeFileSync(f, gz);
    execFileSync('gzip', ['-t', f]);
    const viaPython = execFileSync('python3', [
      '-c',
      'import gzip,sys,hashlib; print(hashlib.sha256(gzip.open(sys.argv[1]).read()).hexdigest())',
      f,
    ])
      .toString()
      .trim();
    assert.is(viaPython, createHash('sha256').update(chunk).digest('hex'));
  });
}

test('stored chunks: a stream mixing both kinds is valid multi-member gzip, the same however it is cut', async () => {
  const data = Buffer.concat([text(CHUNK + 100), randomBytes(3 * CHUNK), text(CHUNK), randomBytes(CHUNK - 5)]);
  const outs = new Set<string>();
  for (const step of [data.length, 65536, 999_983]) {
    const pieces: Buffer[] = [];
    for (let o = 0; o < data.length; o += step) pieces.push(data.subarray(o, o + step));
    const parts: Buffer[] = [];
    for await (const b of gzipChunks(Readable.from(pieces))) parts.push(b);
    const gz = Buffer.concat(parts);
    assert.ok(gunzipSync(gz).equals(data));
    // 4 MiB of random bytes stored, 2 MiB of text compressed to less than half
    assert.ok(gz.length > 4 * CHUNK - 5 && gz.length < 5 * CHUNK, `blob of ${gz.length} bytes`);
    outs.add(createHash('sha256').update(gz).digest('hex'));
  }
  assert.is(outs.size, 1);
});

test.after(() => {
  rmSync(work, { recursive: true, force: true });
});
test.run();
