// The build context as the cache sees it: the native and the JS walker list the same thing; a
// directory's content digest changes exactly when the per-file list a COPY reads changes, whether
// it is computed from scratch or reused from the stat cache; unchanged subtrees are not read.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { BuildContext, statCacheDir } from '../src/context/context.js';
import { IgnoreMatcher } from '../src/context/ignore.js';
import { decodeName, encodeName, Flag, Listing } from '../src/context/listing.js';
import { StatCache } from '../src/context/statcache.js';
import { listContext, nativeWalker, RacyNs, runWalker, walkInJs } from '../src/context/walk.js';
import { KeyBuilder } from '../src/solver/cachekey.js';
import { build } from '../src/solver/build.js';
import { createReporter } from '../src/progress/index.js';
import { Store } from '@tsbuild/layerstore';
import { blockingWalker } from './stand-in-walkers.js';

const base = mkdtempSync(join(tmpdir(), 'tsbuild-context-'));
let n = 0;
const fresh = (what: string) => {
  const d = join(base, `${what}-${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** The wall clock both walkers read for their start (CLOCK_REALTIME), in ns; Date.now() is at most 1 ms behind. */
const nowNs = () => BigInt(Date.now()) * 1_000_000n;

/**
 * Waits until no file under `dirs` would be racy for a walk that starts now, by walk.ts's own
 * rule (ctime within RacyNs of the start; with a whole-second ctime, within the second before):
 * from then on the stat cache may remember every file. A wait for that state, not a fixed pause.
 */
async function settled(...dirs: string[]): Promise<void> {
  let until = 0n;
  const visit = (dir: string | Buffer) => {
    for (const e of readdirSync(dir, { withFileTypes: true, encoding: 'buffer' })) {
      const p = bytes(dir.toString(), e.name);
      if (e.isDirectory()) visit(p);
      else if (e.isFile()) {
        const c = lstatSync(p, { bigint: true }).ctimeNs;
        const s = 1_000_000_000n;
        const clear = c % s === 0n ? (c / s + 2n) * s : c + RacyNs + 1n;
        if (clear > until) until = clear;
      }
    }
  };
  for (const d of dirs) visit(d);
  for (let left = until - nowNs(); left > 0n; left = until - nowNs()) await sleep(Number(left / 1_000_000n) + 1);
}
const bytes = (dir: string, ...parts: (string | Buffer)[]) =>
  Buffer.concat([
    Buffer.from(dir),
    ...parts.flatMap((p) => [Buffer.from('/'), Buffer.isBuffer(p) ? p : Buffer.from(p)]),
  ]);

const BadName = Buffer.from([0x62, 0x61, 0x64, 0xff, 0x2e, 0x74, 0x78, 0x74]); // "bad\xff.txt"

/** The fixture every digest case starts from: odd names, links, an empty dir, depth, 200 fillers. */
function fixture(): string {
  const ctx = fresh('ctx');
  const app = join(ctx, 'app');
  for (const d of ['empty', 'sub/deep/er', 'filler', 'skip/inner', 'keep'])
    mkdirSync(join(app, d), { recursive: true });
  writeFileSync(join(app, 'a.txt'), 'a1');
  writeFileSync(join(app, 'b.txt'), 'bb');
  writeFileSync(join(app, 'space name.txt'), 'spaces');
  writeFileSync(join(app, 'new\nline.txt'), 'newline');
  writeFileSync(bytes(app, BadName), 'not utf-8');
  writeFileSync(join(app, 'sub/deep/er/x.txt'), 'deep');
  writeFileSync(join(app, 'skip/inner/y.txt'), 'skipped');
  writeFileSync(join(app, 'keep/k.txt'), 'kept');
  symlinkSync('a.txt', join(app, 'link'));
  for (let i = 0; i < 200; i++) writeFileSync(join(app, 'filler', `f${String(i).padStart(3, '0')}`), `filler ${i}`);
  writeFileSync(join(ctx, 'outside.txt'), 'not in app');
  stamp(app);
  return ctx;
}

/** Whole-second mtimes, as bench contexts have, so that a test can put one back exactly. */
const Stamp = 1700000000;
function stamp(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true, encoding: 'buffer' })) {
    const p = bytes(dir, e.name);
    if (e.isDirectory()) stamp(p.toString());
    if (!e.isSymbolicLink()) utimesSync(p, Stamp, Stamp);
  }
}

/** A content change that keeps inode, size and mtime: only the ctime tells. */
function rewriteSameSize(path: string | Buffer, content: string): void {
  assert.is(statSync(path).mtimeMs, Stamp * 1000);
  writeFileSync(path, content);
  utimesSync(path, Stamp, Stamp);
}

interface Seen {
  digest: string;
  /** What the key of earlier versions was made of: path, type, mode, link target, content hash. */
  list: string;
  filesRead: number;
}

async function look(ctx: string, cache: string, exclude: string[] = []): Promise<Seen> {
  const c = await BuildContext.open(ctx, undefined, cache);
  const [e] = await c.match('app');
  const rules = exclude.length ? new IgnoreMatcher(exclude) : undefined;
  const digest = await c.treeDigest(e, rules);
  const list = c
    .treeFiles(e, rules)
    .map((f) => [f.rel, f.kind, f.mode.toString(8), f.linkname ?? '', f.hash ?? ''].join('\u0001'))
    .join('\n');
  const filesRead = c.filesRead();
  await c.save();
  return { digest, list, filesRead };
}

interface Case {
  name: string;
  change: (app: string, ctx: string) => void;
  /** The COPY reads the same list afterwards, so the key must not change. */
  same?: boolean;
  ignore?: string;
  exclude?: string[];
}

const cases: Case[] = [
  { name: 'content changed, same size and mtime', change: (app) => rewriteSameSize(join(app, 'a.txt'), 'a2') },
  { name: 'content changed, other size', change: (app) => writeFileSync(join(app, 'b.txt'), 'bbb') },
  {
    name: 'mtime only (touch)',
    change: (app) => utimesSync(join(app, 'a.txt'), new Date(), new Date(Date.now() + 5000)),
    same: true,
  },
  { name: 'mode', change: (app) => chmodSync(join(app, 'a.txt'), 0o755) },
  { name: 'mode of a directory', change: (app) => chmodSync(join(app, 'empty'), 0o700) },
  {
    name: 'file became a symlink',
    change: (app) => {
      unlinkSync(join(app, 'b.txt'));
      symlinkSync('a.txt', join(app, 'b.txt'));
    },
  },
  {
    name: 'file became a directory',
    change: (app) => {
      unlinkSync(join(app, 'b.txt'));
      mkdirSync(join(app, 'b.txt'));
    },
  },
  {
    name: 'symlink retargeted',
    change: (app) => {
      unlinkSync(join(app, 'link'));
      symlinkSync('b.txt', join(app, 'link'));
    },
  },
  { name: 'file added', change: (app) => writeFileSync(join(app, 'c.txt'), 'c') },
  { name: 'file removed', change: (app) => unlinkSync(join(app, 'b.txt')) },
  { name: 'file renamed', change: (app) => renameSync(join(app, 'b.txt'), join(app, 'b2.txt')) },
  { name: 'empty directory added', change: (app) => mkdirSync(join(app, 'empty2')) },
  { name: 'empty directory removed', change: (app) => rmSync(join(app, 'empty'), { recursive: true }) },
  { name: 'deep file changed', change: (app) => rewriteSameSize(join(app, 'sub/deep/er/x.txt'), 'DEEP') },
  { name: 'one filler of 200 changed', change: (app) => rewriteSameSize(join(app, 'filler/f123'), 'FILLER 123') },
  {
    name: 'replaced by another inode, same size and mtime, other content',
    change: (app) => {
      writeFileSync(join(app, 'a.new'), 'a9');
      utimesSync(join(app, 'a.new'), Stamp, Stamp);
      renameSync(join(app, 'a.new'), join(app, 'a.txt'));
    },
  },
  {
    name: 'replaced by another inode with the same content',
    change: (app) => {
      writeFileSync(join(app, 'a.new'), 'a1');
      renameSync(join(app, 'a.new'), join(app, 'a.txt'));
    },
    same: true,
  },
  {
    name: 'a hard link made elsewhere (ctime only)',
    change: (app, ctx) => linkSync(join(app, 'a.txt'), join(ctx, 'a-link')),
    same: true,
  },
  { name: 'name with a space changed', change: (app) => rewriteSameSize(join(app, 'space name.txt'), 'SPACES') },
  { name: 'name with a newline changed', change: (app) => rewriteSameSize(join(app, 'new\nline.txt'), 'NEWLINE') },
  { name: 'non-UTF-8 name changed', change: (app) => rewriteSameSize(bytes(app, BadName), 'NOT UTF-8') },
  { name: 'non-UTF-8 name added', change: (app) => writeFileSync(bytes(app, Buffer.from([0xc3, 0x28])), 'x') },
  { name: 'fifo added (never copied)', change: (app) => execFileSync('mkfifo', [join(app, 'fifo')]), same: true },
  {
    name: 'file outside the copied directory changed',
    change: (_app, ctx) => writeFileSync(join(ctx, 'outside.txt'), 'changed'),
    same: true,
  },
  {
    name: '.dockerignore now excludes a file',
    change: (_app, ctx) => writeFileSync(join(ctx, '.dockerignore'), 'app/b.txt\n'),
  },
  {
    name: '.dockerignore now excludes a directory',
    change: (_app, ctx) => writeFileSync(join(ctx, '.dockerignore'), 'app/skip\n'),
  },
  {
    name: 'change inside a directory .dockerignore excludes',
    ignore: 'app/skip\n',
    change: (app) => rewriteSameSize(join(app, 'skip/inner/y.txt'), 'SKIPPED'),
    same: true,
  },
  {
    name: '.dockerignore re-includes with !',
    ignore: 'app/skip\n',
    change: (_app, ctx) => writeFileSync(join(ctx, '.dockerignore'), 'app/skip\n!app/skip/inner/y.txt\n'),
  },
  {
    name: 'change of a re-included file',
    ignore: 'app/skip\n!app/skip/inner/y.txt\n',
    change: (app) => rewriteSameSize(join(app, 'skip/inner/y.txt'), 'SKIPPED'),
  },
  {
    name: 'change of an excluded sibling of a re-included file',
    ignore: 'app/skip\n!app/skip/inner/y.txt\n',
    change: (app) => writeFileSync(join(app, 'skip/inner/z.txt'), 'z'),
    same: true,
  },
  {
    name: '.dockerignore wildcard',
    change: (_app, ctx) => writeFileSync(join(ctx, '.dockerignore'), 'app/filler/f1*\n'),
  },
  {
    name: '.dockerignore rewritten to the same rules',
    ignore: 'app/skip\n',
    change: (_app, ctx) => writeFileSync(join(ctx, '.dockerignore'), '# same\napp/skip/\n'),
    same: true,
  },
  {
    name: 'change in a file --exclude leaves out',
    exclude: ['*.txt'],
    change: (app) => rewriteSameSize(join(app, 'a.txt'), 'a2'),
    same: true,
  },
  {
    name: 'change in a file --exclude keeps',
    exclude: ['*.txt'],
    change: (app) => rewriteSameSize(join(app, 'filler/f001'), 'FILLER 001'),
  },
];

// Contexts are made first, then left alone until settled: a file changed within 100 ms of a walk
// is "racy" and never remembered, and the cases must exercise the remembered path. So: every
// context made, settled, every first look, every change, settled, then the second looks.
const prepared = cases.map((c) => {
  const ctx = fixture();
  if (c.ignore) writeFileSync(join(ctx, '.dockerignore'), c.ignore);
  return { c, ctx, cache: fresh('cache'), before: undefined as Seen | undefined };
});

test.before(async () => {
  await settled(...prepared.map((p) => p.ctx));
  for (const p of prepared) p.before = await look(p.ctx, p.cache, p.c.exclude);
  for (const p of prepared) p.c.change(join(p.ctx, 'app'), p.ctx);
  await settled(...prepared.map((p) => p.ctx));
});

for (const p of prepared) {
  const { c, ctx, cache } = p;
  test(`digest: ${c.name} → ${c.same ? 'same key' : 'new key'}`, async () => {
    const before = p.before!;
    const after = await look(ctx, cache, c.exclude);
    const scratch = await look(ctx, fresh('cache'), c.exclude);
    assert.is(after.digest, scratch.digest, 'incremental and from-scratch digests agree');
    assert.is(after.list, scratch.list);
    assert.is(after.digest !== before.digest, !c.same, 'digest');
    assert.is(after.list !== before.list, !c.same, 'per-file list');
  });
}

test('an unchanged tree is not read again; one changed file is the only one read', async () => {
  const ctx = fixture();
  const cache = fresh('cache');
  await settled(ctx);
  const first = await look(ctx, cache);
  assert.is(first.filesRead, 208);
  const again = await look(ctx, cache);
  assert.is(again.filesRead, 0);
  assert.is(again.digest, first.digest);
  rewriteSameSize(join(ctx, 'app/sub/deep/er/x.txt'), 'DEEP');
  await settled(ctx);
  const changed = await look(ctx, cache);
  assert.is(changed.filesRead, 1);
  assert.is.not(changed.digest, first.digest);
  assert.is((await look(ctx, cache)).filesRead, 0);
  // Other rules over the same tree: new digests, no file read again.
  const excluded = await look(ctx, cache, ['filler']);
  assert.is(excluded.filesRead, 0);
  assert.is.not(excluded.digest, changed.digest);
});

test('a file changed just before the walk is read, and read again next time (not remembered)', async () => {
  const ctx = fixture();
  const cache = fresh('cache');
  const a = join(ctx, 'app/a.txt');
  await settled(ctx);
  await look(ctx, cache);
  // Whether the walks began within RacyNs of the change is known once they are done, from the
  // clock read then: the checks are made on an attempt where they did (a slow one is retried;
  // a file that was not racy then was remembered, and the next change is read all the same).
  for (let attempt = 1; ; attempt++) {
    rewriteSameSize(a, attempt % 2 ? 'a2' : 'a3');
    const changed = lstatSync(a, { bigint: true }).ctimeNs;
    const listing = walkInJs(ctx, Infinity);
    const first = await look(ctx, cache);
    if (nowNs() + 1_000_000n - changed > RacyNs) {
      assert.ok(attempt < 50, 'no attempt walked within 100 ms of its change');
      continue;
    }
    const app = listing.find(0, Buffer.from('app'))!;
    const entry = listing.find(listing.child(app), Buffer.from('a.txt'))!;
    assert.ok(listing.flags(entry) & Flag.Racy);
    assert.ok(listing.dirFlags(listing.child(app)) & Flag.RacyBelow);
    assert.is(first.filesRead, 1);
    break;
  }
  await settled(ctx);
  assert.is((await look(ctx, cache)).filesRead, 1, 'read again: the racy file was not remembered');
  assert.is((await look(ctx, cache)).filesRead, 0, 'remembered once settled');
});

test('a damaged stat cache reads as empty rows, never as wrong digests', async () => {
  const ctx = fixture();
  await settled(ctx);
  const truth = await look(ctx, fresh('cache'));
  const damage: [string, (file: string) => void][] = [
    ['truncated', (f) => truncateSync(f, Math.floor(readFileSync(f).length / 2))],
    ['emptied', (f) => truncateSync(f, 0)],
    [
      'one byte flipped in every 97',
      (f) => {
        const b = readFileSync(f);
        for (let i = 20; i < b.length; i += 97) b[i] ^= 0x5a;
        writeFileSync(f, b);
      },
    ],
    ['garbage', (f) => writeFileSync(f, Buffer.alloc(4096, 0x41))],
  ];
  for (const [what, hurt] of damage) {
    const cache = fresh('cache');
    await look(ctx, cache);
    const [file] = readdirSync(cache).filter((f) => f.endsWith('.v5'));
    hurt(join(cache, file));
    const r = await look(ctx, cache);
    assert.is(r.digest, truth.digest, what);
    assert.is(r.list, truth.list, what);
  }
});

test('the native and the JS walker list the same entries, signatures and flags', async () => {
  const ctx = fixture();
  const odd = join(ctx, 'odd');
  mkdirSync(join(odd, 'd'.repeat(255)), { recursive: true });
  writeFileSync(bytes(odd, Buffer.from([0xed, 0xa0, 0x80])), 'a UTF-8-encoded surrogate');
  writeFileSync(join(odd, 'é'), 'valid UTF-8');
  symlinkSync('/etc/passwd', join(odd, 'absolute'));
  symlinkSync('../../nowhere', join(odd, 'dangling'));
  symlinkSync(BadName, bytes(odd, 'bad-target'));
  symlinkSync('/', join(odd, 'root-link'));
  execFileSync('mkfifo', [join(odd, 'fifo')]);
  linkSync(join(ctx, 'outside.txt'), join(odd, 'hard'));
  let deep = odd;
  for (let i = 0; i < 40; i++) mkdirSync((deep = join(deep, `l${i}`)));
  writeFileSync(join(deep, 'bottom'), 'x');
  await settled(ctx);
  const walker = nativeWalker();
  assert.ok(walker, 'tsbuild-walk is built (pnpm run build)');
  const c = Listing.parse(execFileSync(walker, [ctx], { maxBuffer: 1 << 28 }));
  const j = walkInJs(ctx, Infinity);
  assert.ok(sameListing(c, j) > 260);
  // Nothing behind a symlink was listed.
  const rootLink = c.find(c.child(c.find(0, Buffer.from('odd'))!), Buffer.from('root-link'))!;
  assert.is(c.kind(rootLink), 'symlink');
  assert.is(c.child(rootLink), 0xffffffff);
  assert.is(c.link(rootLink).toString(), '/');
  // Directories .dockerignore leaves out whole are listed but not looked into, by both.
  const prune = ['app/filler', 'odd/l0'];
  const cp = Listing.parse(
    execFileSync(walker, [ctx, ...prune.flatMap((p) => ['--prune', p])], { maxBuffer: 1 << 28 }),
  );
  const jp = walkInJs(ctx, Infinity, prune);
  assert.ok(sameListing(cp, jp) < 100);
  const filler = cp.find(cp.child(cp.find(0, Buffer.from('app'))!), Buffer.from('filler'))!;
  assert.ok(cp.flags(filler) & Flag.Pruned);
  assert.is(cp.child(filler), 0xffffffff);
  assert.not.ok(cp.sig(0).equals(c.sig(0)));
});

test('a walker that cannot be started (missing, not executable) leaves the listing to JS, same result', async () => {
  const ctx = fixture();
  // Two walks compared flag by flag: neither may find a file racy that the other does not.
  await settled(ctx);
  const noexec = join(mkdtempSync(join(base, 'tsbuild-walker-')), 'tsbuild-walk'); // removed with base
  writeFileSync(noexec, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
  for (const walker of ['/nonexistent/tsbuild-walk', noexec]) {
    const l = await listContext(ctx, 100_000, [], walker);
    assert.ok(sameListing(l, walkInJs(ctx, Infinity)) > 200, walker);
  }
  assert.ok(nativeWalker(), 'the real walker is still used afterwards');
});

/** Compares two listings entry by entry; returns how many entries there were. */
function sameListing(c: Listing, j: Listing): number {
  let entries = 0;
  const same = (dc: number, dj: number, path: string): void => {
    assert.ok(c.sig(dc).equals(j.sig(dj)), `signature of ${path}`);
    assert.is(c.dirFlags(dc), j.dirFlags(dj), `flags of ${path}`);
    const ec = c.entries(dc);
    const ej = j.entries(dj);
    assert.is(ec.length, ej.length, `entries of ${path}`);
    ec.forEach((oc, i) => {
      const oj = ej[i];
      entries++;
      const name = `${path}/${c.nameText(oc)}`;
      assert.ok(c.buf.subarray(oc, oc + 48).equals(j.buf.subarray(oj, oj + 48)), `stat of ${name}`);
      assert.ok(c.name(oc).equals(j.name(oj)) && c.link(oc).equals(j.link(oj)), `name and target of ${name}`);
      if (c.kind(oc) === 'dir' && !(c.flags(oc) & Flag.Pruned)) same(c.child(oc), j.child(oj), name);
      else assert.is(j.child(oj), 0xffffffff, `${name} is not looked into`);
    });
  };
  same(0, 0, '');
  return entries;
}

test('sources resolve inside the context: symlinks in any component never leave it', async () => {
  const ctx = fixture();
  mkdirSync(join(ctx, 'etc'));
  writeFileSync(join(ctx, 'etc/passwd'), 'the context one');
  symlinkSync('/etc', join(ctx, 'abs'));
  symlinkSync('../../../..', join(ctx, 'up'));
  symlinkSync('loop', join(ctx, 'loop'));
  symlinkSync('app', join(ctx, 'applink'));
  symlinkSync('/outside.txt', join(ctx, 'app/escape'));
  const c = await BuildContext.open(ctx, undefined, fresh('cache'));
  const rels = async (s: string) => (await c.match(s)).map((e) => `${e.rel}:${e.kind}`);
  const table: [string, string[]][] = [
    ['abs/passwd', ['etc/passwd:file']],
    ['up', [':dir']],
    ['up/outside.txt', ['outside.txt:file']],
    ['loop', []],
    ['applink/a.txt', ['app/a.txt:file']],
    ['applink/escape', ['outside.txt:file']],
    ['../../outside.txt', ['outside.txt:file']],
    [
      'app/*.txt',
      [
        'app/a.txt:file',
        'app/b.txt:file',
        'app/bad\udcff.txt:file',
        'app/new\nline.txt:file',
        'app/space name.txt:file',
      ],
    ],
    ['applink/sub/*/er', ['app/sub/deep/er:dir']],
    ['nothing', []],
  ];
  for (const [source, want] of table) assert.equal(await rels(source), want, source);
  const [passwd] = await c.match('abs/passwd');
  assert.is(
    passwd.hash,
    execFileSync('sha256sum', [join(ctx, 'etc/passwd')])
      .toString()
      .slice(0, 64),
  );
});

test('a name that is not UTF-8 is kept as its bytes, and has no host path string', async () => {
  const ctx = fixture();
  const c = await BuildContext.open(ctx, undefined, fresh('cache'));
  const [e] = await c.match('app');
  await c.treeDigest(e, undefined);
  const f = c.treeFiles(e, undefined).find((x) => encodeName(x.rel).equals(BadName))!;
  assert.ok(f, 'listed');
  assert.is(f.host, undefined);
  assert.is(
    f.hash,
    createHash('sha256')
      .update(readFileSync(bytes(join(ctx, 'app'), BadName)))
      .digest('hex'),
  );
});

test('decodeName: invalid UTF-8 round-trips through lone surrogates; valid UTF-8 is as is', () => {
  const table: [number[], string][] = [
    [[0x61, 0x62], 'ab'],
    [[0xc3, 0xa9], 'é'],
    [[0xf0, 0x9f, 0x98, 0x80], '😀'],
    [[0xff], '\udcff'],
    [[0x61, 0xc3], 'a\udcc3'],
    [[0xc3, 0x28], '\udcc3('],
    [[0xc0, 0xaf], '\udcc0\udcaf'],
    [[0xe0, 0x80, 0xaf], '\udce0\udc80\udcaf'],
    [[0xed, 0xa0, 0x80], '\udced\udca0\udc80'],
    [[0xf4, 0x90, 0x80, 0x80], '\udcf4\udc90\udc80\udc80'],
    [[0xef, 0xbf, 0xbd], '\ufffd'],
  ];
  for (const [b, want] of table) {
    const buf = Buffer.from(b);
    assert.is(decodeName(buf), want, buf.toString('hex'));
    assert.ok(encodeName(want).equals(buf), `round trip of ${buf.toString('hex')}`);
  }
});

test('a copied tree enters the key as one digest, spelled out per file only when asked', () => {
  let expanded = 0;
  const make = (digest: string) =>
    new KeyBuilder().addDigest('parent', 'p').addGroup('tree:app', digest, () => {
      expanded++;
      return [
        ['file:app', 'dir:755:'],
        ['file:app/a', 'file:644:h'],
      ];
    });
  const a = make('d1');
  const key = a.key();
  assert.is(expanded, 0);
  assert.is.not(make('d2').key(), key);
  assert.equal(a.inputs, [
    ['parent', 'p'],
    ['file:app', 'dir:755:'],
    ['file:app/a', 'file:644:h'],
  ]);
  assert.equal(a.inputs.length, 3);
  assert.is(expanded, 2, 'spelled out at each read, never kept');
});

// The COPY of a context directory goes through treeWalk (no record per file kept): it must give the very files
// treeFiles lists (the list the key and --explain are made of), one at a time, in the layer's order.
const walkCases: [string, string[]][] = [
  ['everything', []],
  ['an excluded directory with something re-included below it', ['skip', '!skip/inner/y.txt']],
  ['excluded files', ['*.txt', 'filler/f1*']],
];
for (const [name, exclude] of walkCases)
  test(`treeWalk gives treeFiles' files in the layer's order, hashed only when asked: ${name}`, async () => {
    const ctx = fixture();
    linkSync(join(ctx, 'app/a.txt'), join(ctx, 'app/keep/hard-a'));
    const c = await BuildContext.open(ctx, undefined, fresh('cache'));
    const [e] = await c.match('app');
    const rules = exclude.length ? new IgnoreMatcher(exclude) : undefined;
    await c.treeDigest(e, rules);
    const listed = c.treeFiles(e, rules);
    const walked = [...c.treeWalk(e, rules, true)];
    assert.equal(
      walked.map((f) => ({ ...f })).sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0)),
      listed.map((f) => ({ ...f })).sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0)),
    );
    assert.ok(walked.length > 200 - (exclude.length ? 100 : 0), `${walked.length} files`);
    assert.is(walked[0].rel, '', 'the item first');
    // The layer's order (layerstore's entryOrderKey) on the names' bytes: each '/' as 0, then byte order.
    const order = walked.slice(1).map((f) => encodeName(f.rel).map((b) => (b === 0x2f ? 0 : b)));
    for (let i = 1; i < order.length; i++) assert.ok(Buffer.compare(order[i - 1], order[i]) < 0, walked[i + 1].rel);
    const bare = [...c.treeWalk(e, rules, false)];
    assert.equal(
      bare.map((f) => f.rel),
      walked.map((f) => f.rel),
    );
    assert.ok(bare.every((f) => f.hash === undefined));
    assert.ok(bare.filter((f) => f.kind === 'file').every((f) => typeof f.ino === 'bigint'));
  });

test('the stat cache remembers how big the listing was', async () => {
  const ctx = fixture();
  const cache = fresh('cache');
  assert.is(StatCache.sizeHint(cache, ctx), 0);
  await settled(ctx);
  await look(ctx, cache);
  assert.ok(StatCache.sizeHint(cache, ctx) > 200);
});

/** Kills a stand-in walker a failed test left running (the test process would wait for it). */
const reap = (pid: number): void => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone, as it should be
  }
};

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'ESRCH');
    return false;
  }
};

/** A context the stat cache says is large: it goes to the native walker (here the stand-in) at once. */
async function largeContext(): Promise<{ ctx: string; cache: string }> {
  const ctx = fixture();
  const cache = fresh('cache');
  await look(ctx, cache);
  assert.ok(StatCache.sizeHint(cache, ctx) > 150, 'the stat cache says the context is large');
  return { ctx, cache };
}

test('tsbuild-walk output and complaint are the same through its unnamed files and through pipes', async () => {
  const ctx = fixture();
  await settled(ctx);
  const walker = nativeWalker()!;
  const run = async (tmp: string | undefined) => {
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp; // no such directory: no unnamed file, pipes instead
    if (tmp === undefined) delete process.env.TMPDIR;
    try {
      const listing = await listContext(ctx, 100_000, [], walker);
      const err = await runWalker(walker, [join(ctx, 'nothere')]).then(
        () => 'listed',
        (e: Error) => e.message,
      );
      return { listing, err };
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  };
  const files = await run(undefined);
  const pipes = await run(join(base, 'no-such-tmp'));
  assert.ok(sameListing(files.listing, pipes.listing) > 200);
  assert.ok(sameListing(files.listing, walkInJs(ctx, Infinity)) > 200);
  assert.is(files.err, `cannot open ${join(ctx, 'nothere')}: No such file or directory`);
  assert.is(pipes.err, files.err);
});

test('a started listing that nobody will read is cancelled: its walker is killed and reaped', async () => {
  const { ctx, cache } = await largeContext();
  const { walker, pid } = blockingWalker(fresh('walker'));
  const started = BuildContext.start(ctx, undefined, cache, walker);
  const p = await pid();
  assert.ok(alive(p), 'the walker runs');
  await started.cancel();
  const left = alive(p);
  reap(p);
  assert.not.ok(left, 'no walker is left behind');
  await started.cancel(); // a second cancel is a no-op
});

test('a build that fails before reading its context ends the listing it was given', async () => {
  const { ctx, cache } = await largeContext();
  const root = fresh('store');
  const store = await Store.open(root);
  // The walk's stat cache where the build looks for it (in the store), so that it is taken.
  mkdirSync(statCacheDir(root), { recursive: true });
  renameSync(StatCache.fileFor(cache, ctx), StatCache.fileFor(statCacheDir(root), ctx));
  const { walker, pid } = blockingWalker(fresh('walker'));
  const context = BuildContext.start(ctx, join(ctx, 'Dockerfile'), statCacheDir(root), walker);
  const p = await pid();
  const reporter = await createReporter('quiet');
  const request = {
    store,
    contextDir: ctx,
    dockerfilePath: join(ctx, 'Dockerfile'),
    dockerfileIsFile: true,
    dockerfileText: 'FROM scratch\nNOSUCHINSTRUCTION x\n',
    tags: [],
    buildArgs: {},
    noCache: false,
    network: 'none' as const,
    secrets: new Map(),
    reporter,
    signal: new AbortController().signal,
    context,
  };
  const err = await build(request).then(
    () => undefined,
    (e: Error) => e,
  );
  reporter.close();
  const left = alive(p);
  reap(p);
  assert.ok(err, 'the build fails');
  assert.match(err!.message, /NOSUCHINSTRUCTION|unknown instruction/i);
  assert.not.ok(left, 'no walker is left behind');
});

test('a start for another context, Dockerfile or store is not taken; a start is taken once', async () => {
  const ctx = fixture();
  const cache = fresh('cache');
  const df = join(ctx, 'Dockerfile');
  const started = BuildContext.start(ctx, df, cache);
  assert.is(started.claim(ctx, df, fresh('other-cache')), undefined);
  assert.is(started.claim(ctx, undefined, cache), undefined);
  assert.is(started.claim(join(ctx, 'app'), df, cache), undefined);
  assert.is(started.claim(ctx, df, cache), started);
  assert.is(started.claim(ctx, df, cache), undefined, 'a second build (another --platform) lists anew');
  await started.cancel();
});

test('a .dockerignore that may not be read fails open(), not start(); the rules it reads prune the walk', async () => {
  const ctx = fixture();
  symlinkSync('/etc/passwd', join(ctx, '.dockerignore'));
  const started = BuildContext.start(ctx, undefined, fresh('cache'));
  const failed = await started.open().then(
    () => undefined,
    (e: Error) => e.message,
  );
  assert.match(failed ?? 'opened', /\.dockerignore: a symlink that leads out of the build context/);
  await started.cancel();

  // Started early with the native walker, the listing honours the rules: a directory left out whole
  // is not looked into, and what is ignored does not match.
  const { ctx: large, cache } = await largeContext();
  writeFileSync(join(large, 'Dockerfile.dockerignore'), 'app/filler\napp/*.txt\n');
  writeFileSync(join(large, '.dockerignore'), 'app/keep\n'); // the Dockerfile's own wins
  const s = BuildContext.start(large, join(large, 'Dockerfile'), cache);
  const c = await s.open();
  assert.equal(await c.match('app/filler'), []);
  assert.equal(await c.match('app/a.txt'), []);
  assert.is((await c.match('app/keep/k.txt')).length, 1);
  const [app] = await c.match('app');
  const files = c.treeFiles(app, undefined).map((f) => f.rel); // relative to app/
  assert.ok(files.includes('keep/k.txt') && files.includes('sub/deep/er/x.txt'), files.join(' '));
  assert.not.ok(
    files.some((f) => f.startsWith('filler') || f === 'a.txt'),
    files.join(' '),
  );
  await s.cancel();
});

test.after(() => rmSync(base, { recursive: true, force: true }));
test.run();
