// What the tar writer and the ingest produce, pinned byte for byte: the header encoder writes fields digit by digit
// into a reused block, and a large layer is hashed on a worker thread (hash-thread.ts); neither may change a
// digest. The pins are what the code made before those changes (issue 17).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeLayer } from '../src/layer/index.js';
import { encodeHeader, type TarHeader } from '../src/layer/tar-header.js';
import { ThreadHash } from '../src/hash-thread.js';
import { Store } from '../src/store.js';
import type { Digest } from '../src/types.js';
import { TempBlobs } from './helpers/temp-blobs.js';
import { makeEveryKind } from './helpers/every-kind.js';

/** The error `p` rejects with (fails if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => assert.unreachable('it resolved') as never,
    (e: Error) => e,
  );
}

const work = mkdtempSync(join(tmpdir(), 'layer-pinned-'));
const base = { mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1_700_000_000, linkname: '', devmajor: 0, devminor: 0 };
const xattrs = {};
const HEADERS: [string, TarHeader][] = [
  ['plain file', { ...base, xattrs, name: 'node_modules/pkg-0001/lib/index.js', type: 'file', size: 6409 }],
  ['directory gets a slash', { ...base, xattrs, name: 'app/src', type: 'directory', mode: 0o2775 }],
  ['name of exactly 100', { ...base, xattrs, name: 'a'.repeat(100), type: 'file' }],
  ['ustar prefix split', { ...base, xattrs, name: 'p/'.repeat(60) + 'file', type: 'file', size: 1 }],
  ['PAX path (no split)', { ...base, xattrs, name: 'x'.repeat(101), type: 'file' }],
  ['non-ASCII name', { ...base, xattrs, name: 'ünïcödé-名前', type: 'file', size: 8 }],
  ['control char in name', { ...base, xattrs, name: 'tab\there', type: 'file' }],
  ['long symlink target', { ...base, xattrs, name: 'l', type: 'symlink', mode: 0o777, linkname: 't'.repeat(150) }],
  ['non-ASCII hardlink target', { ...base, xattrs, name: 'h', type: 'hardlink', linkname: 'ä/b' }],
  ['largest octal ids', { ...base, xattrs, name: 'f', type: 'file', uid: 0o7777777, gid: 0o7777777, mode: 0o7777 }],
  ['PAX ids', { ...base, xattrs, name: 'f', type: 'file', uid: 3_000_000, gid: 4_000_000 }],
  ['PAX size', { ...base, xattrs, name: 'f', type: 'file', size: 0o77777777777 + 1 }],
  [
    'largest octal size and mtime',
    { ...base, xattrs, name: 'f', type: 'file', size: 0o77777777777, mtime: 0o77777777777 },
  ],
  ['mtime past 31 bits', { ...base, xattrs, name: 'f', type: 'file', mtime: 2 ** 31 + 5 }],
  ['negative mtime', { ...base, xattrs, name: 'f', type: 'file', mtime: -1 }],
  ['char device', { ...base, xattrs, name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 }],
  ['fifo', { ...base, xattrs, name: 'p', type: 'fifo', mode: 0o620 }],
  [
    'xattrs',
    {
      ...base,
      name: 'x',
      type: 'file',
      xattrs: { 'user.b': Buffer.from([0, 0xff]), 'security.capability': Buffer.from('c') },
    },
  ],
];
const HEADER_PINS: Record<string, string> = {
  'plain file': 'bf5ed73b6d49c90f7e840fc4545f2e7d69dea2a414c9d23f6a20a7a44d60b2e3',
  'directory gets a slash': '1090e73bf1c7bcdad95ef8aadcb4f6d9b1ceddbc6380a5ab69e340214865ed6c',
  'name of exactly 100': '34a8cd6fe0ce4713b6f93eaabefa8257100b60cf3051a21dff5aa8d137e8d9be',
  'ustar prefix split': '0356a1aea73ecbf8af23c6f857bfe0dd0f07bd5a185f2538b2e8868f5b500cfe',
  'PAX path (no split)': '551cf29006f6074e4b9a8a2c04331e0d3345d9762b72729d361ae92b2d069778',
  'non-ASCII name': '370fa36150c5390a55fa56981e3f83e4db9138007a188ac72745331e0df59bc4',
  'control char in name': '9c96721861eff69864b32ffda3d99e6fd1674c81142bcd70000afc7deb05f7f2',
  'long symlink target': '9786bb79666e87e289ea89fea740ca6a7e73c67cb003945f1b4ed816fc15fb19',
  'non-ASCII hardlink target': '0900a913902040fb10d13041c183fc4039717bae60589b7414fc6d8cb38f7854',
  'largest octal ids': 'c07595f9c311f509c298f76fffef304494cdcc984898183558a8111ab70dfc04',
  'PAX ids': '0aa060625a0c765edeb3448f0afb194f476da2127ab1e82bb347699af5cd8cdb',
  'PAX size': '5cb4309421178d62b745a07bdea1304ddda696fa5e7701fb9fd6f1256afc682a',
  'largest octal size and mtime': 'c780542d44d6fdd8761226f6a9b31e1d48cc46341582969725611295ca5a122a',
  'mtime past 31 bits': 'c58dc3055e4d1e6ecbc3df24fee83ab0432743487da318f88c0d7d5e6acc1bd4',
  'negative mtime': '388d20e2acdd4358e82df0222a4dab31c4afba0332ac5ce6893b15a90570bc92',
  'char device': 'bb080735551fdd39609259a476aac794f6f35e8ea3be12eea12ba72a055e84b3',
  fifo: '77c286628068599f2366e3791a5df796fc66bdc6a0fa47c1ea97d76d0383334a',
  xattrs: 'cb4126d2aabe5b74083c241ae7a957e4d100ec3041c4b60813622c980ce5f311',
};

for (const [name, h] of HEADERS) {
  test(`tar header: ${name} → the pinned bytes, in a new block or a reused one`, () => {
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.is(sha(encodeHeader(h)), HEADER_PINS[name]);
    // A scratch block holding another header's bytes: nothing of them may show through.
    const scratch = Buffer.alloc(512, 0xa5);
    assert.is(sha(Buffer.from(encodeHeader(h, scratch))), HEADER_PINS[name]);
  });
}

// makeEveryKind: hard links, symlinks (long, dangling), an empty dir, setuid/setgid/sticky, PAX names and ids,
// binary xattrs, devices, and a 3 MiB file (more than one tar chunk: the store's ingest hashes it on a thread).
const EVERY_KIND = 'sha256:bd40105e26d150dd769cd1ca1212147c2c755e4462e9d36819b6085b30574edd';
makeEveryKind(join(work, 'tree'));

test('every kind of entry: one layer digest from the store (hashed on a thread) and a plain blob store', async () => {
  const store = await Store.open(join(work, 'store'));
  const opts = { compression: 'none' as const, sourceDateEpoch: 1_600_000_010 };
  const stored = await writeLayer(store.blobs, join(work, 'tree'), opts);
  assert.is(stored.diffID, EVERY_KIND);
  assert.is(stored.digest, EVERY_KIND);
  // The blob on disk is what the digest says.
  const onDisk = createHash('sha256');
  for await (const b of store.blobs.open(stored.digest)) onDisk.update(b as Buffer);
  assert.is(`sha256:${onDisk.digest('hex')}`, EVERY_KIND);
  const plain = await writeLayer(new TempBlobs(join(work, 'blobs')), join(work, 'tree'), opts);
  assert.equal(plain, stored);
});

const SAB = (bytes: Buffer) => {
  const b = Buffer.from(new SharedArrayBuffer(bytes.length));
  bytes.copy(b);
  return b;
};
const HASH_ROWS: [string, () => Buffer[]][] = [
  ['nothing', () => []],
  ['shared-memory chunks', () => [SAB(randomBytes(1 << 20)), SAB(randomBytes(1 << 20)), SAB(randomBytes(77))]],
  [
    'plain buffers, a slice of a larger one, an empty one',
    () => [randomBytes(5000), randomBytes(9000).subarray(3, 4000), Buffer.alloc(0)],
  ],
  ['both kinds mixed', () => [SAB(randomBytes(300)), randomBytes(300), SAB(randomBytes(1 << 16))]],
];
for (const [name, make] of HASH_ROWS) {
  test(`ThreadHash: ${name} → the same digest as hashing here`, async () => {
    const chunks = make();
    const t = new ThreadHash();
    await Promise.all(chunks.map((c) => t.update(c)));
    const here = createHash('sha256');
    for (const c of chunks) here.update(c);
    assert.is(await t.digest(), here.digest('hex'));
  });
}

test('ThreadHash: close() fails what is pending and what comes after', async () => {
  const t = new ThreadHash();
  const pending = t.update(SAB(randomBytes(1 << 20)));
  t.close();
  await pending.then(
    () => {},
    () => {},
  );
  assert.instance(await rejection(t.update(Buffer.from('x'))), Error);
  assert.instance(await rejection(t.digest()), Error);
});

test('ingest hashed on a thread: a wrong expected digest fails the commit, leaving no blob or temp file', async () => {
  const store = await Store.open(join(work, 'store2'));
  const ingest = store.blobs.ingest();
  ingest.hashOnThread!();
  const data = randomBytes(3 << 20);
  await new Promise<void>((resolve, reject) => ingest.end(data, () => resolve()).on('error', reject));
  const wrong = `sha256:${'0'.repeat(64)}` as Digest;
  assert.match((await rejection(ingest.commit({ digest: wrong }))).message, /digest mismatch/);
  const right = `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
  assert.not.ok(await store.blobs.has(right));
  assert.equal(
    readdirSync(join(work, 'store2', 'tmp')).filter((n) => n.startsWith('ingest-')),
    [],
  );
  // The same bytes again, committed: the digest the thread computed is the content's.
  const again = store.blobs.ingest();
  again.hashOnThread!();
  await new Promise<void>((resolve, reject) => again.end(data, () => resolve()).on('error', reject));
  assert.equal(await again.commit({ digest: right }), { digest: right, size: data.length });
  assert.ok(existsSync(join(work, 'store2', 'blobs', 'sha256', right.slice(7))));
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
