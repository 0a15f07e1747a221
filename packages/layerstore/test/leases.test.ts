// Leases (leases.ts): what a live process or container uses survives `prune --all` with no grace;
// a lease expires with its owner (a dead pid; a reused pid, told apart by its start time; a
// removed path); reusing waits while a prune holds the sweep lock. And what builds on them: tags
// only for complete images, images that report damage, and check (--repair).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fsp, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Store } from '../src/store.js';
import { SweepLock } from '../src/leases.js';
import { check } from '../src/check.js';
import { processStart } from '@tsbuild/sys';
import { sampleImage, sha, tempStore } from './storekit.js';

const storeModule = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'store.js');

/** All of prune, with nothing kept for its age. */
const pruneAll = (store: Store) => store.prune({ gracePeriodMs: 0, allCache: true });

test('a live lease keeps blobs, snapshots and cache records through prune --all; dropping it frees them', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const lease = await store.beginLease('test');
    const blob = await store.blobs.put('made under a lease');
    const key = sha('a cache key');
    await store.cache.put(key, { value: 1, blobs: [blob.digest] });
    const snapDir = await store.tempDir('snap');
    await fsp.writeFile(join(snapDir, 'f'), 'x');
    const chain = sha('a chain');
    await store.snapshots.adopt(chain, snapDir);
    let r = await pruneAll(store);
    assert.equal([r.blobs, r.cacheRecords, r.snapshots], [0, 0, 0]);
    assert.ok(await store.blobs.has(blob.digest));
    assert.ok(await store.cache.get(key));
    assert.ok(await store.snapshots.get(chain));
    // The lease file names the process and what it holds.
    const [info] = await store.leases.list();
    assert.equal(info.owner, { pid: process.pid, start: processStart('self') });
    assert.ok(info.blob.has(blob.digest) && info.cache.has(key) && info.snapshot.has(chain));

    store.endLease();
    assert.equal(await fsp.readdir(store.leases.dir), [], 'dropping removes the lease file');
    assert.ok(lease.file.endsWith('.lease'));
    r = await pruneAll(store);
    assert.equal([r.blobs, r.cacheRecords, r.snapshots], [1, 1, 1]);
  } finally {
    await cleanup();
  }
});

test('a cache hit leases the record, its blob and its snapshot; an image in use keeps its chain', async () => {
  const { store, cleanup } = await tempStore();
  try {
    // Made earlier by someone else, with no lease: only the record reaches the layer.
    const img = await sampleImage(store);
    const key = sha('step key');
    const chain = sha('record chain');
    const dir = await store.tempDir('snap');
    await store.snapshots.adopt(chain, dir);
    await store.cache.put(key, { value: 'hit', blobs: img.layers.map((l) => l.digest), snapshots: [chain] });
    const orphan = (await store.snapshots.ensure(img.layers)).map((s) => s.chainID);
    // Without --all, the record keeps its layer and its snapshot; nothing keeps the image's own chain.
    const kept = await store.prune({ gracePeriodMs: 0 });
    assert.is(kept.snapshots, orphan.length);
    assert.ok(await store.snapshots.get(chain));

    await store.beginLease('build');
    assert.ok(await store.cache.get(key), 'the hit');
    const snaps = await store.snapshots.ensure(img.layers);
    const r = await pruneAll(store);
    assert.is(r.cacheRecords, 0);
    assert.ok(await store.blobs.has(img.layers[0].digest));
    assert.ok(await store.snapshots.get(chain));
    for (const s of snaps) assert.ok(await store.snapshots.get(s.chainID), 'snapshots of a running build stay');
    assert.equal(
      snaps.map((s) => s.chainID),
      orphan,
    );
    store.endLease();
    await pruneAll(store);
    assert.equal(await store.snapshots.list(), []);
    assert.not.ok(await store.cache.get(key));
  } finally {
    await cleanup();
  }
});

test('a lease file removed under its live owner is written anew, with everything it held', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const lease = await store.beginLease('test');
    const a = await store.blobs.put('first');
    await fsp.rm(lease.file);
    const b = await store.blobs.put('second');
    const [info] = await store.leases.list();
    assert.ok(info.live);
    assert.equal([...info.blob].sort(), [a.digest, b.digest].sort());
    assert.equal((await pruneAll(store)).blobs, 0);
  } finally {
    store.endLease();
    await cleanup();
  }
});

test('the lease of a killed process expires: prune removes it and what only it held', async () => {
  const { store, cleanup } = await tempStore();
  try {
    // A real process takes a lease, puts a blob, says so, and is SIGKILLed (no exit handler runs).
    const script = `const { Store } = await import(process.argv[1]);
      const s = await Store.open(process.argv[2]);
      await s.beginLease('killed');
      const b = await s.blobs.put('held by a process that dies');
      process.stdout.write(b.digest + '\\n');
      setInterval(() => {}, 1000);`;
    const argv = ['--input-type=module', '-e', script, storeModule, store.root];
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    const digest = await new Promise<string>((resolve) => {
      child.stdout.once('data', (b: Buffer) => resolve(b.toString().trim()));
    });
    let r = await pruneAll(store);
    assert.is(r.blobs, 0, 'kept while the process lives');
    assert.is((await store.leases.list()).length, 1);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    assert.is((await store.leases.list())[0].live, false);
    r = await pruneAll(store);
    assert.is(r.leases, 1);
    assert.is(r.blobs, 1);
    assert.not.ok(await store.blobs.has(digest as `sha256:${string}`));
    assert.equal(await fsp.readdir(store.leases.dir), []);
  } finally {
    await cleanup();
  }
});

test('a lease naming a live pid with another start time (the pid was reused) has expired', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const blob = await store.blobs.put('held by a previous owner of this pid');
    const start = processStart('self');
    await fsp.mkdir(store.leases.dir, { recursive: true });
    const header = (s: string) => JSON.stringify({ purpose: 'build', pid: process.pid, start: s, created: Date.now() });
    const earlier = String(Number(start) - 1);
    writeFileSync(join(store.leases.dir, 'reused.lease'), `${header(earlier)}\nblob ${blob.digest}\n`);
    writeFileSync(join(store.leases.dir, 'same.lease'), `${header(start!)}\nblob ${blob.digest}\n`);
    const byName = new Map((await store.leases.list()).map((l) => [l.name, l.live]));
    assert.equal(
      [...byName],
      [
        ['reused.lease', false],
        ['same.lease', true],
      ],
    );
    let r = await pruneAll(store);
    assert.equal([r.leases, r.blobs], [1, 0], 'the same pid and start time still holds the blob');
    await fsp.rm(join(store.leases.dir, 'same.lease'));
    r = await pruneAll(store);
    assert.is(r.blobs, 1);
  } finally {
    await cleanup();
  }
});

test('a torn last line is not an entry; a lease file with no header yet is alive while young', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const a = await store.blobs.put('a');
    const b = await store.blobs.put('b');
    await fsp.mkdir(store.leases.dir, { recursive: true });
    const header = JSON.stringify({ purpose: 'x', pid: process.pid, start: processStart('self') });
    writeFileSync(join(store.leases.dir, 'torn.lease'), `${header}\nblob ${a.digest}\nblob ${b.digest.slice(0, 40)}`);
    writeFileSync(join(store.leases.dir, 'empty.lease'), '');
    const r = await pruneAll(store);
    assert.is(r.blobs, 1);
    assert.ok(await store.blobs.has(a.digest));
    assert.equal((await fsp.readdir(store.leases.dir)).sort(), ['empty.lease', 'torn.lease']);
  } finally {
    await cleanup();
  }
});

test('reusing waits while prune holds the sweep lock, then sees what prune left', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const blob = await store.blobs.put('existing');
    await store.beginLease('test');
    const release = await store.lock(SweepLock);
    let seen: boolean | undefined;
    const using = store.blobs.has(blob.digest).then((v) => (seen = v));
    await new Promise((r) => setTimeout(r, 50));
    assert.is(seen, undefined, 'has() waits for the sweep to end');
    // Prune (holding the lock) removes the blob: it read the leases before the entry was written.
    await fsp.unlink(store.blobs.path(blob.digest));
    await release();
    await using;
    assert.is(seen, false, 'the check after the sweep tells the truth');
  } finally {
    store.endLease();
    await cleanup();
  }
});

test('tags only for complete images; images lists a broken one and its missing digests; check, repair', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const img = await sampleImage(store);
    await store.images.tag('whole:1', img);
    await store.images.tag('broken:1', img);
    const layer = img.layers[0].digest;
    await fsp.unlink(store.blobs.path(layer));
    await rejects(() => store.images.tag('new:1', img), /not tagging .*new:1.*blob sha256:[0-9a-f]{64} is missing/);
    const rows = await store.images.list();
    assert.is(rows.length, 2);
    for (const r of rows) assert.equal(r.broken?.missing, [layer]);
    await rejects(() => store.images.get('broken:1'), /broken: blob sha256:.* missing/);

    // A corrupt blob and a torn cache record besides.
    const junk = await store.blobs.put('junk');
    await fsp.chmod(store.blobs.path(junk.digest), 0o644);
    await fsp.writeFile(store.blobs.path(junk.digest), 'not junk');
    await fsp.writeFile(join(store.cache.dir, `${'a'.repeat(64)}.json`), '{"value":');
    let rep = await check(store);
    assert.is(rep.remaining, 4, rep.problems.join('\n'));
    assert.ok(rep.problems.some((p) => p.includes(`blob ${junk.digest} is corrupt`)));
    assert.ok(rep.problems.some((p) => p.startsWith('tag docker.io/library/broken:1: blob') && p.includes(layer)));
    assert.ok(rep.problems.some((p) => p.includes('not JSON')));

    rep = await check(store, { repair: true });
    assert.is(rep.remaining, 0);
    assert.is(rep.repaired.length, 4);
    rep = await check(store);
    assert.equal([rep.problems, rep.remaining], [[], 0]);
    assert.is((await store.tags.list()).length, 0);
  } finally {
    await cleanup();
  }
});

test.run();
