// The compact forms a large context is kept in (issue 17): the copied tree in path order without a list to sort,
// the listing's directories in path order without a set, the stat cache read a row at a time and saved by a
// merge, the changed rows in one arena; and the memory a listed, hashed and walked context holds per entry.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BuildContext } from '../src/context/context.js';
import { IgnoreMatcher } from '../src/context/ignore.js';
import { decodeName, encodeName, None, type Listing } from '../src/context/listing.js';
import { Bodies, directoryKeys, StatCache } from '../src/context/statcache.js';
import { walkInJs } from '../src/context/walk.js';
import { DirTimes } from '../src/solver/ops/staging.js';

const base = mkdtempSync(join(tmpdir(), 'tsbuild-packed-'));
let n = 0;
const fresh = (what: string) => {
  const d = join(base, `${what}-${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
};
const Stamp = 1700000000;
const bytesPath = (dir: string, name: Buffer) => Buffer.concat([Buffer.from(`${dir}/`), name]);
const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Names whose order is easy to get wrong: `a` beside `a-b`, `a.c` and `a0` (a '/' sorts after '-' and '.',
 * before '0'), a non-BMP character (UTF-16 puts it before U+FFFD, UTF-8 after), a byte that is not UTF-8, a
 * 255-byte name, and a directory 30 deep.
 */
function oddTree(): string {
  const ctx = fresh('ctx');
  const app = join(ctx, 'app');
  const long = 'L'.repeat(250) + '.txt';
  const deep = Array.from({ length: 30 }, (_, i) => `d${i}`).join('/');
  for (const d of ['a/b', 'a/z', 'a-b', 'a.c/x', 'a0', 'é', '😀', 'x\uFFFDy', 'logs/keep', deep])
    mkdirSync(join(app, d), { recursive: true });
  const files = [
    'a/b/f',
    'a/z/g.txt',
    'a/z/h.log',
    'a-b/f',
    'a.c/x/f',
    'a0/f',
    'é/f',
    '😀/f',
    'x\uFFFDy/f',
    'logs/one.log',
    'logs/keep/two.log',
    `${deep}/bottom.txt`,
    long,
    'a.txt',
    'a-',
    'A',
  ];
  for (const f of files) writeFileSync(join(app, f), `content of ${f}\n`);
  writeFileSync(bytesPath(app, Buffer.from([0x62, 0xff, 0x2e, 0x74])), 'not utf-8');
  symlinkSync('a.txt', join(app, 'a-link'));
  utimesSync(app, Stamp, Stamp);
  return ctx;
}

/** The order files() had before it was a walk: the item, then the layer walk's files sorted by their rel. */
function sortedAsBefore<T extends { rel: string }>(walked: T[]): T[] {
  const [first, ...rest] = walked;
  return [first, ...rest.sort((a, b) => byCodeUnit(a.rel, b.rel))];
}

const ruleCases: [name: string, dockerignore: string, exclude: string[]][] = [
  ['no rules', '', []],
  ['a directory excluded with one file re-included below it', 'app/a\n!app/a/z/g.txt\n', []],
  ['files excluded by pattern, a directory left out whole', '**/*.log\n!app/logs/keep/two.log\napp/é\n', []],
  ['--exclude with a re-include', '', ['a-b', 'logs', '!logs/keep', 'd0/d1']],
];
for (const [name, dockerignore, exclude] of ruleCases)
  test(`treeFiles is the layer walk sorted by path, with no list sorted: ${name}`, async () => {
    const ctx = oddTree();
    if (dockerignore) writeFileSync(join(ctx, '.dockerignore'), dockerignore);
    const c = await BuildContext.open(ctx, undefined, fresh('cache'));
    const [e] = await c.match('app');
    const rules = exclude.length ? new IgnoreMatcher(exclude) : undefined;
    await c.treeDigest(e, rules);
    const listed = c.treeFiles(e, rules);
    const layer = [...c.treeWalk(e, rules, true, 'layer')];
    assert.equal(
      listed.map((f) => ({ ...f })),
      sortedAsBefore(layer).map((f) => ({ ...f })),
    );
    const rels = listed.slice(1).map((f) => f.rel);
    for (let i = 1; i < rels.length; i++) assert.ok(rels[i - 1] < rels[i], `${rels[i - 1]} < ${rels[i]}`);
    assert.ok(rels.includes('😀/f') && rels.includes('L'.repeat(250) + '.txt'), rels.join(' '));
    assert.is(
      rels.some((r) => r.endsWith('/bottom.txt')),
      !exclude.includes('d0/d1'),
    );
    assert.ok(rels.includes(decodeName(Buffer.from([0x62, 0xff, 0x2e, 0x74]))));
    // The path walk gives the same hashes the listed files have, one at a time.
    const path = [...c.treeWalk(e, rules, true, 'path')];
    assert.equal(
      path.map((f) => f.hash),
      listed.map((f) => f.hash),
    );
  });

/** Every directory key of a listing, as the Set the stat cache's save used to build. */
function keysAsBefore(L: Listing): string[] {
  const keys = new Set<string>(['']);
  const walk = (dir: number, key: string) => {
    for (const off of L.entries(dir)) {
      const child = L.child(off);
      if (child === None) continue;
      const k = key === '' ? L.nameKey(off) : `${key}/${L.nameKey(off)}`;
      keys.add(k);
      walk(child, k);
    }
  };
  walk(0, '');
  return [...keys].sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
}

test('directoryKeys gives every directory of a listing in the order of its bytes, without a set', () => {
  const ctx = oddTree();
  const L = walkInJs(ctx, Infinity);
  const keys = [...directoryKeys(L)];
  assert.equal(keys, keysAsBefore(L));
  assert.ok(keys.length > 40, `${keys.length} directories`);
  assert.ok(keys.includes(encodeName('app/😀').toString('latin1')));
});

/** Each row of a stat cache as bytes (sig, memos, file records), by directory key. */
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

async function digestAll(ctx: string, cache: string): Promise<void> {
  const c = await BuildContext.open(ctx, undefined, cache);
  const [e] = await c.match('app');
  await c.treeDigest(e, undefined);
  await c.save();
}

test('the stat cache read a row at a time and saved by a merge keeps every row as it was', async () => {
  const ctx = oddTree();
  // More directories than the lookups a cache makes one probe at a time (64), so both ways of reading are used.
  for (let i = 0; i < 90; i++) {
    mkdirSync(join(ctx, 'app', 'many', `m${i}`), { recursive: true });
    writeFileSync(join(ctx, 'app', 'many', `m${i}`, 'f'), `m${i}`);
  }
  const dir = fresh('cache');
  // Old enough for the cache to remember every file: ctimes are what they are, so wait them out by the clock.
  await new Promise((r) => setTimeout(r, 1100));
  await digestAll(ctx, dir);
  const keys = [...directoryKeys(walkInJs(ctx, Infinity))];
  const first = rowsOf(StatCache.load(dir, ctx), keys);
  assert.ok(first.size > 100, `${first.size} rows`);
  // Nothing changed: a fresh load reads the same rows, one lookup at a time.
  const few = StatCache.load(dir, ctx);
  assert.equal(rowsOf(few, keys.slice(0, 3)), new Map([...first].filter(([k]) => keys.slice(0, 3).includes(k))));

  // One file changed, one directory gone: its row is dropped, the changed row replaced, every other row copied.
  writeFileSync(join(ctx, 'app', 'many', 'm7', 'f'), 'changed');
  rmSync(join(ctx, 'app', 'many', 'm8'), { recursive: true });
  await new Promise((r) => setTimeout(r, 1100));
  await digestAll(ctx, dir);
  const after = rowsOf(StatCache.load(dir, ctx), keys);
  const m7 = 'app/many/m7';
  const m8 = 'app/many/m8';
  assert.not.ok(after.has(m8), 'the row of a directory no longer listed is dropped');
  assert.ok(after.has(m7) && after.get(m7) !== first.get(m7), 'the changed row is replaced');
  for (const [k, v] of first) {
    if (k === m7 || k === m8 || k === 'app/many' || k === 'app' || k === '') continue;
    assert.is(after.get(k), v, `row ${k} copied as it was`);
  }

  // A file whose rows are out of order (foreign, damaged) reads as missing rows and saves without them.
  const file = StatCache.fileFor(dir, ctx);
  const buf = readFileSync(file);
  const count = buf.readUInt32LE(12);
  const swapped = Buffer.from(buf);
  buf.copy(swapped, 16, 16 + 4, 16 + 8);
  buf.copy(swapped, 16 + 4, 16, 16 + 4);
  writeFileSync(file, swapped);
  const damaged = StatCache.load(dir, ctx);
  for (const k of keys) {
    const r = damaged.row(k);
    if (r) assert.is(rowsOf(damaged, [k]).get(k), after.get(k), `a row found in a damaged file is the right one: ${k}`);
  }
  damaged.addFile('app', Buffer.from('extra'), Buffer.alloc(40), 0, Buffer.alloc(32, 7));
  await damaged.save(walkInJs(ctx, Infinity));
  const saved = readFileSync(file);
  assert.ok(saved.readUInt32LE(12) >= count - 2, 'the rows in order are kept');
  const reloaded = StatCache.load(dir, ctx);
  const keysAfter = [...directoryKeys(walkInJs(ctx, Infinity))];
  const order = keysAfter.filter((k) => reloaded.row(k));
  assert.ok(order.length >= count - 2, `${order.length} rows readable after the save`);
});

const bodyCases: [name: string, sizes: number[]][] = [
  ['small bodies', [0, 1, 100, 4096]],
  ['a body bigger than a chunk', [10, (1 << 20) + 17, 5]],
  ['bodies filling chunks exactly', [1 << 19, 1 << 19, 1 << 19, 3]],
  ['bodies across many chunks and blocks', Array.from({ length: 3000 }, (_, i) => 300 + ((i * 7919) % 2500))],
];
// Full chunks go to a temp file (read back through blocks kept by last use), or stay in memory where none can be
// made; each body is read back after every set, so a block read before later chunks reached it is not reused.
for (const [name, sizes] of bodyCases)
  for (const spill of [true, false])
    test(`Bodies keeps what was set, replaced and compacted: ${name}${spill ? '' : ', no temp file'}`, () => {
      const b = spill ? new Bodies() : new Bodies(() => undefined);
      const want = new Map<string, Buffer>();
      const body = (size: number, fill: number) => Buffer.alloc(size, fill);
      const check = () => {
        for (const [k, v] of want) assert.ok(b.get(k)!.equals(v), k);
      };
      sizes.forEach((size, i) => {
        const v = body(size, (i % 250) + 1);
        b.set(`k${i}`, [v.subarray(0, size >> 1), v.subarray(size >> 1)]);
        want.set(`k${i}`, v);
        if (i % 97 === 0 || sizes.length < 10) check();
      });
      // Replaced many times over: the old bytes are compacted away, the live ones kept.
      for (let r = 0; r < 40; r++) {
        const v = body((r * 7919) % 70000, r);
        b.set('k0', [v]);
        want.set('k0', v);
        if (r % 10 === 0) check();
      }
      assert.is(b.size, want.size);
      check();
      for (const [k, v] of want) assert.is(b.length(k), v.length);
      assert.equal([...b.keys()].sort(), [...want.keys()].sort());
      assert.is(b.get('absent'), undefined);
      b.clear();
      assert.is(b.size, 0);
    });

// What a listed, hashed and walked context holds per entry: the listing and the stat cache's rows, a few hundred
// bytes of buffers, not an object (or a Buffer) per file. Measured as the heap and the external memory a context
// of 10N files holds beyond one of N, after full collections (V8 frees an ArrayBuffer's memory after the
// collection that finds it dead: the checks wait for that). The records are ~200 bytes a file, and the buffers
// are allocated by the MiB; before this, the same context held ~210 bytes of heap and ~340 of buffers a file,
// and ~320 bytes in all while the stat cache's new rows stayed in memory (now in a temp file: ~255).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
}

function flatContext(files: number): string {
  const ctx = fresh(`flat-${files}`);
  for (let i = 0; i < files; i++) {
    const d = join(ctx, 'app', `pkg${i % (files / 10)}`, 'lib');
    if (i < files / 10) mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `file-${i}.js`), `module.exports = ${i};\n`);
  }
  return ctx;
}

async function held(ctx: string): Promise<{ heap: number; external: number; keep: unknown }> {
  const c = await BuildContext.open(ctx, undefined, fresh('cache'));
  const [e] = await c.match('app');
  await c.treeDigest(e, undefined);
  let walked = 0;
  for (const f of c.treeWalk(e, undefined, true, 'path')) if (f.hash) walked++;
  for (const f of c.treeWalk(e, undefined, false)) if (f.kind === 'file') walked++;
  assert.ok(walked > 0);
  await settle();
  const u = process.memoryUsage();
  return { heap: u.heapUsed, external: u.external, keep: c };
}

// While a content digest hashes its directories (children first), every directory's plan is live: its kids are
// numbers in a shared typed array, its digest 32 bytes of one buffer. Measured when the item's own row is put, the
// last: a context of many directories and one file each, 10N against N, after full collections. A Buffer of the
// path and a digest Buffer (with an ArrayBuffer and a block of its own) per directory were ~890 bytes a directory
// in all here; now ~535 (the listing's entries, the stat cache's row, the plan and its visit).
async function heldWhileHashing(dirs: number): Promise<number> {
  const ctx = fresh(`dirs-${dirs}`);
  for (let i = 0; i < dirs; i++) {
    const d = join(ctx, 'app', `p${i % 100}`, `d${i}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'f.js'), `${i}\n`);
  }
  const c = await BuildContext.open(ctx, undefined, fresh('cache'));
  const [e] = await c.match('app');
  let held = -1;
  const put = c.stats.put.bind(c.stats);
  c.stats.put = (key, ...rest) => {
    put(key, ...rest);
    if (key !== 'app') return;
    gc();
    gc();
    const u = process.memoryUsage();
    held = u.heapUsed + u.external;
  };
  await c.treeDigest(e, undefined);
  assert.ok(held > 0, 'the row of the item was put');
  await settle();
  return held;
}

test('a content digest holds a small record per directory while it hashes, not Buffers per directory', async () => {
  const N = 1000;
  await settle();
  const small = await heldWhileHashing(N);
  const large = await heldWhileHashing(10 * N);
  const per = (large - small) / (9 * N);
  assert.ok(per < 650, `${per.toFixed(0)} bytes held per directory while hashing`);
});

test('a listed, hashed and walked context holds a small record per entry, not objects per file', async () => {
  const N = 2000;
  const small = flatContext(N);
  const large = flatContext(10 * N);
  await settle();
  const before = await held(small);
  const after = await held(large);
  const heap = (after.heap - before.heap) / (9 * N);
  const all = (after.heap + after.external - before.heap - before.external) / (9 * N);
  assert.ok(heap < 100, `${heap.toFixed(0)} bytes of heap held per file`);
  assert.ok(all < 290, `${all.toFixed(0)} bytes held per file`);
  assert.ok(before.keep && after.keep);
});

// The COPY's staging keeps each directory's time until its files are in (Staging.finish): a time in a typed array,
// not a [path, Date] pair each (a 200,000-file context has 39,200 directories).
const many = Array.from({ length: 3000 }, (_, i) => [`d${i}`, new Date(1700000000000 + i * 1001)] as [string, Date]);
const dirTimeCases: [name: string, dirs: [string, Date][]][] = [
  [
    'milliseconds kept',
    [
      ['a', new Date(1700000000123)],
      ['a/b', new Date(0)],
    ],
  ],
  ['before 1970', [['x', new Date(-1500)]]],
  ['a name that is not UTF-8', [[decodeName(Buffer.from([0x62, 0xff])), new Date(5)]]],
  ['more than the first block', many],
];
for (const [name, dirs] of dirTimeCases)
  test(`DirTimes gives the directories last first, with their times in seconds: ${name}`, () => {
    const t = new DirTimes();
    for (const [path, mtime] of dirs) t.push(path, mtime);
    assert.equal([...t.lastFirst()], dirs.map(([path, mtime]) => [path, mtime.getTime() / 1000]).reverse());
  });

test('DirTimes holds a number per directory beyond its path', async () => {
  const N = 40_000;
  const paths = Array.from({ length: N }, (_, i) => `node_modules/pkg-${i}/lib`);
  const t = new DirTimes();
  await settle();
  const before = process.memoryUsage();
  for (let i = 0; i < N; i++) t.push(paths[i], new Date(1700000000000 + i));
  await settle();
  const after = process.memoryUsage();
  const per = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / N;
  assert.ok(per < 40, `${per.toFixed(0)} bytes per directory`);
  assert.is([...t.lastFirst()].length, N);
});

test.after(() => rmSync(base, { recursive: true, force: true }));
test.run();
