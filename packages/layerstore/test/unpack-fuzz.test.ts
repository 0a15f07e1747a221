// Fuzzing the unpacker: valid layers, mutated (entry order, types, link targets, names with '..'
// and '/', hardlinks to outside, symlink chains, whiteouts of parents, opaque markers, evil
// directory metadata, corrupt header bytes), unpacked into a scratch target. After every case:
//  - a directory OUTSIDE the target is exactly as it was (paths, modes, owners, xattrs, mtimes,
//    contents), as is everything else in the case's scratch dir;
//  - the unpack either succeeded or failed with StoreError 'hostile-layer' or 'corrupt'.
// Deterministic: a seeded generator, FUZZ_CASES cases (default 300). A failure prints the case's
// entries; FUZZ_SEED=N FUZZ_CASES=M runs other cases. Every path a case can reach is inside its
// scratch dir: symlink targets are that dir, the outside dir, or relative names that stay below
// it, so a bug shows up as a changed fingerprint, never as a changed host file.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { unpackLayer, type UnpackOptions } from '../src/layer/index.js';
import { setXattr } from '@tsbuild/sys';
import { MediaType, StoreError } from '../src/types.js';
import { buildTar, type RawEntry } from './helpers/tar-build.js';
import { fingerprint } from './helpers/tree.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);
const CASES = Number(process.env.FUZZ_CASES ?? 300);
const work = mkdtempSync(join(tmpdir(), 'unpack-fuzz-'));

/** mulberry32: small, fast, and the same sequence everywhere. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
    chance: (p: number) => next() < p,
  };
}
type Rng = ReturnType<typeof rng>;

// BASE is the case's scratch dir (parent of root/ and outside/), OUT the outside dir: both are
// replaced by absolute paths. Names reach outside through a symlink to BASE: `d/outside/v`.
const COMPONENTS = ['a', 'b', 'd', 'outside', 'v', 'bin', 'secret', 'x'];
const TARGETS = [
  'BASE',
  'OUT',
  'OUT/v',
  'OUT/secret',
  'OUT/bin',
  '../outside',
  '..',
  '.',
  'a',
  'b',
  'd',
  'a/b',
  'd/outside',
];
const HARD_TARGETS = [
  'OUT/secret',
  '../outside/secret',
  'd/outside/secret',
  'a/outside/secret',
  'a',
  'b',
  'a/b',
  'x',
  'nothing',
];

function evil(e: RawEntry): RawEntry {
  return { ...e, mode: 0o4777, uid: 1234, gid: 1234, mtime: 1000, xattrs: { 'user.pwned': Buffer.from('1') } };
}

/** A valid layer: a small tree of directories, files, symlinks inside it and a hardlink. */
function validLayer(r: Rng): RawEntry[] {
  const out: RawEntry[] = [];
  const dirs: string[] = [];
  const files: string[] = [];
  if (r.chance(0.3)) out.push({ name: './', type: 'directory', mode: 0o755 });
  const n = 2 + r.int(8);
  for (let i = 0; i < n; i++) {
    const parent = dirs.length && r.chance(0.6) ? r.pick(dirs) + '/' : '';
    const name = parent + r.pick(COMPONENTS) + (r.chance(0.3) ? String(i) : '');
    const kind = r.int(10);
    if (kind < 4) {
      out.push({ name, type: 'directory', mode: 0o755 });
      dirs.push(name);
    } else if (kind < 8) {
      out.push({ name, content: `content ${i}` });
      files.push(name);
    } else if (kind < 9) out.push({ name, type: 'symlink', linkname: r.pick(['a', 'b', '../x', 'v']) });
    else if (files.length) out.push({ name, type: 'hardlink', linkname: r.pick(files) });
    else out.push({ name, type: 'fifo' });
  }
  return out;
}

const at = <T>(xs: T[], r: Rng) => r.int(xs.length);

/** One mutation of the entry list, in place. */
const mutations: ((es: RawEntry[], r: Rng) => void)[] = [
  // entry order
  (es, r) => {
    const i = at(es, r),
      j = at(es, r);
    [es[i], es[j]] = [es[j], es[i]];
  },
  (es, r) => {
    es.reverse();
    if (r.chance(0.5)) es.push(es[at(es, r)]);
  },
  // types
  (es, r) => {
    const i = at(es, r);
    const type = r.pick(['file', 'directory', 'symlink', 'hardlink', 'fifo', 'char'] as const);
    const linkname = r.pick(type === 'hardlink' ? HARD_TARGETS : TARGETS);
    es[i] = { name: es[i].name, type, linkname, devmajor: 1, devminor: 3 };
  },
  // a directory replaced by a symlink out, after metadata was queued below it
  (es, r) => {
    const d = r.pick(['d', 'a', es[at(es, r)].name.split('/')[0]]);
    es.push(evil({ name: `${d}/outside/v`, type: 'directory' }));
    es.push({ name: d, type: 'symlink', linkname: r.pick(['BASE', '..']) });
  },
  // the same, the directory first replaced by a file or a whiteout
  (es, r) => {
    es.push(evil({ name: 'd/outside/v', type: 'directory' }));
    es.push(r.chance(0.5) ? { name: 'd', content: 'f' } : { name: '.wh.d', content: '' });
    es.push({ name: 'd', type: 'symlink', linkname: 'BASE' });
  },
  // link targets
  (es, r) => {
    const i = at(es, r);
    es[i] = r.chance(0.5)
      ? { name: es[i].name, type: 'symlink', linkname: r.pick(TARGETS) }
      : { name: es[i].name, type: 'hardlink', linkname: r.pick(HARD_TARGETS) };
  },
  // a symlink chain, then a write through it
  (es, r) => {
    es.push({ name: 'b', type: 'symlink', linkname: r.pick(['OUT', 'BASE', '../outside']) });
    es.push({ name: 'a', type: 'symlink', linkname: 'b' });
    es.push(r.chance(0.5) ? { name: 'a/secret', content: 'pwned' } : evil({ name: 'a/v', type: 'directory' }));
  },
  // names with '..', '.', '/', absolute
  (es, r) => {
    const i = at(es, r);
    const name = es[i].name;
    const names = [
      `../${name}`,
      `${name}/../../outside/secret`,
      `/${name}`,
      `./${name}`,
      `${name}//x`,
      `a/./../${name}`,
      `d/outside/${name}`,
    ];
    es[i] = { ...es[i], name: r.pick(names) };
  },
  // whiteouts of parents, and opaque markers
  (es, r) => {
    const parts = es[at(es, r)].name.split('/').filter((p) => p && p !== '.');
    if (parts.length === 0) return;
    const k = r.int(parts.length);
    const dir = parts.slice(0, k).join('/');
    const marker = r.chance(0.5) ? `.wh.${parts[k]}` : '.wh..wh..opq';
    es.splice(r.int(es.length + 1), 0, { name: dir ? `${dir}/${marker}` : marker, content: '' });
  },
  // evil metadata on an existing directory entry
  (es, r) => {
    const i = at(es, r);
    if (es[i].type === 'directory') es[i] = evil(es[i]);
  },
];

interface Case {
  entries: RawEntry[];
  mode: NonNullable<UnpackOptions['mode']>;
  lower: boolean;
  corrupt?: number;
}

function makeCase(r: Rng): Case {
  const entries = validLayer(r);
  const n = 1 + r.int(4);
  for (let i = 0; i < n; i++) r.pick(mutations)(entries, r);
  const c: Case = { entries, mode: r.chance(0.3) ? 'apply' : 'overlay', lower: r.chance(0.3) };
  if (r.chance(0.1)) c.corrupt = r.int(1 << 30);
  return c;
}

function setup(i: number, c: Case) {
  const base = join(work, String(i));
  const root = join(base, 'root'),
    outside = join(base, 'outside');
  mkdirSync(root, { recursive: true });
  mkdirSync(join(outside, 'v'), { recursive: true });
  writeFileSync(join(outside, 'secret'), 'secret');
  writeFileSync(join(outside, 'bin'), 'a host binary', { mode: 0o755 });
  symlinkSync('v', join(outside, 'l'));
  setXattr(join(outside, 'bin'), 'user.mark', Buffer.from('host'));
  if (c.lower) {
    // What earlier layers left in an existing tree (apply mode) or in the lowerdir form.
    symlinkSync(outside, join(root, 'd'));
    symlinkSync(base, join(root, 'b'));
    mkdirSync(join(root, 'a', 'v'), { recursive: true });
  }
  return { base, root, outside };
}

/** Everything in the case's scratch dir except the target's contents. */
function scratch(base: string) {
  return { outside: fingerprint(join(base, 'outside')), top: readdirSync(base).sort() };
}

function tarOf(c: Case, base: string, outside: string): Buffer {
  const sub = (s: string) => s.replace(/^BASE/, base).replace(/^OUT/, outside);
  const tar = buildTar(c.entries.map((e) => ({ ...e, linkname: e.linkname && sub(e.linkname) })));
  if (c.corrupt !== undefined) {
    const headers = Math.max(1, Math.floor((tar.length - 1024) / 512));
    const off = (c.corrupt % headers) * 512 + ((c.corrupt >>> 12) % 512);
    tar[off] = (tar[off] + 1 + (c.corrupt % 255)) & 0xff;
  }
  return tar;
}

test(`unpack fuzz: ${CASES} mutated layers from seed ${SEED} never touch outside the target`, async () => {
  const r = rng(SEED);
  const outcomes = { ok: 0, 'hostile-layer': 0, corrupt: 0 };
  for (let i = 0; i < CASES; i++) {
    const c = makeCase(r);
    const { base, root, outside } = setup(i, c);
    const before = scratch(base);
    const what = () =>
      `case ${i} (FUZZ_SEED=${SEED}), ${c.mode}${c.lower ? ' onto a lower tree' : ''}` +
      `${c.corrupt === undefined ? '' : `, corrupt ${c.corrupt}`}:\n${JSON.stringify(c.entries)}`;
    let err: unknown;
    try {
      await unpackLayer(Readable.from([tarOf(c, base, outside)]), MediaType.OciLayer, root, { mode: c.mode });
    } catch (e) {
      err = e;
    }
    if (err === undefined) outcomes.ok++;
    else if (err instanceof StoreError && (err.code === 'hostile-layer' || err.code === 'corrupt')) {
      outcomes[err.code]++;
    } else assert.unreachable(`unexpected error ${(err as Error).stack ?? String(err)}\n${what()}`);
    assert.equal(scratch(base), before, `outside the target changed: ${what()}`);
    rmSync(base, { recursive: true, force: true });
  }
  // The generator must reach every outcome, or the fuzzing proves little.
  const reached = outcomes.ok > CASES / 10 && outcomes['hostile-layer'] > CASES / 10 && outcomes.corrupt > 0;
  assert.ok(reached, JSON.stringify(outcomes));
  console.log(`  unpack fuzz outcomes: ${JSON.stringify(outcomes)}`);
});

test.after(() => {
  rmSync(work, { recursive: true, force: true });
});
test.run();
