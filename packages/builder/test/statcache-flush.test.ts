// The stat cache written before the end of a build (StatCache.flush, issue 17): a build writes it while a RUN's
// command runs once no step reads the context again, keeps reading its rows after, and its save() at the end
// writes only what changed since.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ownedId, selfStart } from '@tsbuild/sys';
import { BuildContext } from '../src/context/context.js';
import { directoryKeys, StatCache } from '../src/context/statcache.js';
import { walkInJs } from '../src/context/walk.js';

const base = mkdtempSync(join(tmpdir(), 'tsbuild-flush-'));
test.after(() => rmSync(base, { recursive: true, force: true }));

/** A context of a few directories, old enough (by the clock) for the cache to remember its files. */
async function tree(name: string): Promise<{ ctx: string; cache: string; keys: string[] }> {
  const ctx = join(base, name, 'ctx');
  for (const d of ['app/a', 'app/b', 'app/c/d']) {
    mkdirSync(join(ctx, d), { recursive: true });
    writeFileSync(join(ctx, d, 'f'), d);
  }
  const cache = join(base, name, 'cache');
  await new Promise((r) => setTimeout(r, 1100));
  const c = await digested(ctx, cache);
  await c.save();
  return { ctx, cache, keys: [...directoryKeys(walkInJs(ctx, Infinity))] };
}

async function digested(ctx: string, cache: string): Promise<BuildContext> {
  const c = await BuildContext.open(ctx, undefined, cache);
  const [e] = await c.match('app');
  await c.treeDigest(e, undefined);
  return c;
}

/** Each row as bytes, by directory key. */
function rowsOf(cache: StatCache, keys: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const k of keys) {
    const r = cache.row(k);
    if (r)
      out.set(
        k,
        [r.sig, ...r.memos.flatMap((m) => [m.rules, m.digest]), r.files].map((b) => b.toString('hex')).join(':'),
      );
  }
  return out;
}

const inode = (cache: string, ctx: string) => statSync(StatCache.fileFor(cache, ctx)).ino;

test('flush writes the changed rows and keeps every row readable; save after it writes nothing more', async () => {
  const { ctx, cache, keys } = await tree('flush');
  writeFileSync(join(ctx, 'app/b/f'), 'changed');
  await new Promise((r) => setTimeout(r, 1100));
  const c = await digested(ctx, cache);
  const before = inode(cache, ctx);
  await c.stats.flush(walkInJs(ctx, Infinity));
  const flushed = inode(cache, ctx);
  assert.is.not(flushed, before, 'the file was written (renamed into place)');
  const onDisk = rowsOf(StatCache.load(cache, ctx), keys);
  assert.ok(onDisk.has('app/b'), 'the changed row is in the file');
  assert.equal(rowsOf(c.stats, keys), onDisk, 'the build reads the rows it flushed, and the others, as written');
  await c.stats.flush(walkInJs(ctx, Infinity));
  await c.save();
  assert.is(inode(cache, ctx), flushed, 'nothing changed since the flush: not written again');
});

test('a row changed after a flush is written by save, beside the flushed ones', async () => {
  const { ctx, cache, keys } = await tree('after');
  writeFileSync(join(ctx, 'app/a/f'), 'first');
  await new Promise((r) => setTimeout(r, 1100));
  const c = await digested(ctx, cache);
  await c.stats.flush(walkInJs(ctx, Infinity));
  const flushed = rowsOf(StatCache.load(cache, ctx), keys);
  c.stats.addFile('app/c', Buffer.from('extra'), Buffer.alloc(40), 0, Buffer.alloc(32, 7));
  const inMemory = rowsOf(c.stats, keys);
  await c.save();
  const saved = rowsOf(StatCache.load(cache, ctx), keys);
  assert.equal(saved, inMemory, 'every row as the build had it');
  assert.is.not(saved.get('app/c'), flushed.get('app/c'), 'the later change is in the file');
  assert.is(saved.get('app/a'), flushed.get('app/a'), 'the flushed change is kept');
});

test('a row replaced while a flush writes ends that write; save writes it with the rest', async () => {
  const { ctx, cache, keys } = await tree('during');
  writeFileSync(join(ctx, 'app/b/f'), 'changed');
  await new Promise((r) => setTimeout(r, 1100));
  const c = await digested(ctx, cache);
  const before = inode(cache, ctx);
  // flush() runs until its first await (the directory's mkdir): the row is replaced before any part is written.
  const flushing = c.stats.flush(walkInJs(ctx, Infinity));
  c.stats.addFile('app/c', Buffer.from('extra'), Buffer.alloc(40), 0, Buffer.alloc(32, 7));
  await flushing.then(
    () => assert.unreachable('the flush went on with a row replaced under it'),
    (e: Error) => assert.match(e.message, /replaced while the file was written/),
  );
  assert.is(inode(cache, ctx), before, 'the file as it was');
  const inMemory = rowsOf(c.stats, keys);
  await c.save();
  assert.equal(rowsOf(StatCache.load(cache, ctx), keys), inMemory, 'every row as the build had it');
});

test('a build flushes a large context only: a small one is written at the end, as before', async () => {
  for (const [name, files, writes] of [
    ['small', 10, false],
    ['large', 200, true],
  ] as const) {
    const { ctx, cache } = await tree(name);
    for (let i = 0; i < files; i++) writeFileSync(join(ctx, 'app', `extra-${i}`), `${i}`);
    const c = await digested(ctx, cache);
    const before = inode(cache, ctx);
    await c.flush();
    assert.is(inode(cache, ctx) !== before, writes, `${name} context (${files} more files)`);
    await c.save();
  }
});

test('a save removes the temp files of killed saves of the same cache, and only those', async () => {
  const { ctx, cache } = await tree('sweep');
  const file = StatCache.fileFor(cache, ctx);
  const tmp = (owner: string, of = basename(file)) => join(cache, `.${of}.${owner}.tmp`);
  // [temp file, whether a save must leave it]
  const rows: [string, boolean][] = [
    [tmp('999999999_1_0123456789ab'), false], // its owner is gone: a build killed mid-save
    [tmp(`${process.pid}_1_0123456789ab`), false], // this pid, but another process's start time: pid reused
    [tmp(ownedId()), true], // a live owner: a save under way
    [tmp(`${process.pid}_${selfStart()}_ab`), true], // not a name writeFileAtomic makes: not ours to judge
    [tmp('999999999_1_0123456789ab', 'other.v5'), true], // another context's cache
  ];
  for (const [p] of rows) writeFileSync(p, 'partial');
  writeFileSync(join(ctx, 'app/a/f'), 'changed again');
  await new Promise((r) => setTimeout(r, 1100));
  const c = await digested(ctx, cache);
  await c.save();
  for (const [p, kept] of rows) assert.is(existsSync(p), kept, p);
});

test('a save copies the rows it keeps through one window and one piece buffer, a row larger than both', async () => {
  // 3,000 rows, ~5 MB, one of 1.5 MiB: the rows a save keeps are read through a reused 1 MiB window and written
  // through a reused 1 MiB piece; a view held past the next read or a piece refilled before it was written
  // would show here as a changed or missing row.
  const cache = join(base, 'windows', 'cache');
  const ctx = join(base, 'windows', 'ctx');
  const keys = Array.from({ length: 3000 }, (_, i) => `d/${String(i).padStart(5, '0')}`);
  const files = (i: number, salt: number) => {
    const b = Buffer.alloc(i === 1500 ? 3 << 19 : 500 + ((i * 37) % 3000));
    for (let j = 0; j < b.length; j++) b[j] = (j * 31 + i * 7 + salt) & 0xff;
    return b;
  };
  const memo = { rules: Buffer.alloc(32, 1), digest: Buffer.alloc(32, 2) };
  const hex = (i: number, salt: number) =>
    [Buffer.alloc(32, i & 0xff), memo.rules, memo.digest, files(i, salt)].map((b) => b.toString('hex')).join(':');
  const first = StatCache.load(cache, ctx);
  keys.forEach((k, i) => first.put(k, Buffer.alloc(32, i & 0xff), memo, files(i, 0)));
  await first.save();
  // One row replaced, read without reading the file whole (a few lookups): the save copies the others from it.
  const second = StatCache.load(cache, ctx);
  second.put(keys[10], Buffer.alloc(32, 10), memo, files(10, 9));
  await second.save();
  const want = new Map(keys.map((k, i) => [k, hex(i, i === 10 ? 9 : 0)]));
  assert.equal(rowsOf(StatCache.load(cache, ctx), keys), want);
});

test.run();
