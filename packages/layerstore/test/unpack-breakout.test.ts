// Hostile layers: each case is a tar built here. Rejected cases must fail with
// StoreError('hostile-layer'); every case, rejected or not, must leave everything outside
// the target exactly as it was.
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { unpackLayer, type UnpackOptions } from '../src/layer/index.js';
import { StoreError, MediaType } from '../src/types.js';
import { buildTar, type RawEntry } from './helpers/tar-build.js';
import { describe, fingerprint } from './helpers/tree.js';

const work = mkdtempSync(join(tmpdir(), 'breakout-'));

interface Case {
  name: string;
  /**
   * Entries; the string OUT is replaced by the absolute path of the outside directory (in
   * names, without its leading '/', so that `d/OUT/v` reaches outside/v once d is a link to /).
   */
  entries: RawEntry[];
  /** Pre-existing content of the target (apply mode onto an existing tree). */
  pre?: (root: string, outside: string) => void;
  opts?: UnpackOptions;
  /** Expected: 'hostile' (rejected), or a check of the accepted result. */
  expect: 'hostile' | ((root: string) => void);
}

const f = (name: string, content = 'pwned'): RawEntry => ({ name, content });
const sym = (name: string, linkname: string): RawEntry => ({ name, type: 'symlink', linkname });
const hard = (name: string, linkname: string): RawEntry => ({ name, type: 'hardlink', linkname });
const dir = (name: string): RawEntry => ({ name, type: 'directory', mode: 0o755 });
/** A directory whose metadata would show wherever applied: setuid 0777, uid 1234, an xattr, an old mtime. */
const evilDir = (name: string): RawEntry => ({
  name,
  type: 'directory',
  mode: 0o4777,
  uid: 1234,
  gid: 1234,
  mtime: 1000,
  xattrs: { 'user.pwned': Buffer.from('1') },
});
const wh = (name: string): RawEntry => f(name, '');
/** Expect exactly these `path:type` records in the target. */
const only =
  (...want: string[]) =>
  (root: string) => {
    assert.equal(
      describe(root).map((r) => `${r.path}:${r.type}`),
      want,
    );
  };

const cases: Case[] = [
  { name: 'dot-dot file', entries: [f('../victim')], expect: 'hostile' },
  { name: 'dot-dot in the middle', entries: [f('a/../../victim')], expect: 'hostile' },
  { name: 'dot-dot after ./', entries: [f('./../victim')], expect: 'hostile' },
  { name: 'deep dot-dot', entries: [f('a/b/c/../../../../victim')], expect: 'hostile' },
  { name: 'dot-dot that stays inside is still refused', entries: [dir('a'), f('a/../b')], expect: 'hostile' },
  {
    name: 'dot-dot via PAX path',
    entries: [{ name: 'benign', content: 'x', pax: { path: '../victim' } }],
    expect: 'hostile',
  },
  {
    name: 'dot-dot via GNU long name',
    entries: [{ name: 'benign', content: 'x', gnuLongName: '../../victim' }],
    expect: 'hostile',
  },
  {
    name: 'NUL in a PAX path',
    entries: [{ name: 'benign', content: 'x', pax: { path: 'a\u0000b' } }],
    expect: 'hostile',
  },
  {
    name: 'absolute path is made relative',
    entries: [f('/abs/file', 'ok')],
    expect: (root) =>
      assert.equal(
        describe(root).map((r) => r.path),
        ['abs', 'abs/file'],
      ),
  },
  { name: 'absolute symlink then write through it', entries: [sym('a', 'OUT'), f('a/victim')], expect: 'hostile' },
  {
    name: 'relative symlink then write through it',
    entries: [sym('a', '../outside'), f('a/victim')],
    expect: 'hostile',
  },
  { name: 'symlink to / then mkdir through it', entries: [sym('a', '/'), dir('a/etc')], expect: 'hostile' },
  { name: 'symlink to itself', entries: [sym('a', '.'), f('a/a/victim')], expect: 'hostile' },
  { name: 'symlink chain', entries: [sym('b', 'OUT'), sym('a', 'b'), f('a/victim')], expect: 'hostile' },
  {
    name: 'symlink to dir inside, then a file through it',
    entries: [dir('d'), sym('a', 'd'), f('a/x')],
    expect: 'hostile',
  },
  {
    name: 'file over a symlink replaces the link, never follows it',
    entries: [sym('a', 'OUT/secret'), f('a')],
    expect: (root) => assert.is(describe(root)[0].type, 'file'),
  },
  {
    name: 'directory over a symlink replaces the link',
    entries: [sym('a', 'OUT'), dir('a'), f('a/x', 'ok')],
    expect: (root) =>
      assert.equal(
        describe(root).map((r) => r.type),
        ['dir', 'file'],
      ),
  },
  { name: 'hardlink through a symlinked parent', entries: [sym('a', 'OUT'), hard('h', 'a/secret')], expect: 'hostile' },
  { name: 'hardlink with dot-dot', entries: [hard('h', '../outside/secret')], expect: 'hostile' },
  {
    name: 'hardlink to an absolute path (relative, and missing)',
    entries: [hard('h', 'OUT/secret')],
    expect: 'hostile',
  },
  { name: 'hardlink to a missing entry', entries: [hard('h', 'nothing')], expect: 'hostile' },
  { name: 'hardlink to a directory', entries: [dir('d'), hard('h', 'd')], expect: 'hostile' },
  { name: 'hardlink to itself', entries: [f('h'), hard('h', 'h')], expect: 'hostile' },
  { name: 'hardlink to the root', entries: [hard('h', './')], expect: 'hostile' },
  { name: 'hardlink into the dir it replaces', entries: [dir('d'), f('d/x'), hard('d', 'd/x')], expect: 'hostile' },
  {
    name: 'hardlink to a symlink pointing out links the symlink, then a file over it',
    entries: [sym('l', 'OUT/secret'), hard('h', 'l'), f('h')],
    expect: (root) =>
      assert.equal(
        describe(root).map((r) => `${r.path}:${r.type}`),
        ['h:file', 'l:symlink'],
      ),
  },
  {
    name: 'char device without allowDevices',
    entries: [{ name: 'dev', type: 'char', devmajor: 1, devminor: 3 }],
    expect: 'hostile',
  },
  {
    name: 'block device without allowDevices',
    entries: [{ name: 'dev', type: 'block', devmajor: 8, devminor: 0 }],
    expect: 'hostile',
  },
  {
    name: 'devices with allowDevices: made as they are, with their modes',
    entries: [
      { name: 'c', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'b', type: 'block', devmajor: 8, devminor: 0, mode: 0o660 },
    ],
    opts: { allowDevices: true },
    expect: (root) => {
      const c = lstatSync(join(root, 'c'));
      const b = lstatSync(join(root, 'b'));
      assert.ok(c.isCharacterDevice() && c.rdev === 0x103 && (c.mode & 0o7777) === 0o666);
      assert.ok(b.isBlockDevice() && b.rdev === 0x800 && (b.mode & 0o7777) === 0o660);
    },
  },
  {
    name: 'a 0/0 char device (an overlay whiteout in disguise) even with allowDevices',
    entries: [f('a'), { name: 'a', type: 'char', devmajor: 0, devminor: 0 }],
    opts: { allowDevices: true },
    expect: 'hostile',
  },
  { name: 'whiteout of ..', entries: [f('.wh...', '')], expect: 'hostile' },
  { name: 'whiteout of .', entries: [f('.wh..', '')], expect: 'hostile' },
  { name: 'whiteout of nothing', entries: [f('a/.wh.', '')], expect: 'hostile' },
  { name: 'unknown .wh..wh. marker', entries: [f('.wh..wh.plnk', '')], expect: 'hostile' },
  { name: 'opaque marker at the root', entries: [f('.wh..wh..opq', '')], expect: 'hostile' },
  { name: 'whiteout marker as a directory', entries: [f('.wh.a/b')], expect: 'hostile' },
  { name: 'whiteout as a symlink', entries: [sym('.wh.a', 'x')], expect: 'hostile' },
  { name: 'whiteout through a symlink', entries: [sym('a', 'OUT'), f('a/.wh.secret', '')], expect: 'hostile' },
  {
    name: 'whiteout through a symlink (apply mode)',
    entries: [sym('a', 'OUT'), f('a/.wh.secret', '')],
    opts: { mode: 'apply' },
    expect: 'hostile',
  },
  {
    name: 'opaque through a symlink (apply mode would purge outside)',
    entries: [sym('a', 'OUT'), f('a/.wh..wh..opq', '')],
    opts: { mode: 'apply' },
    expect: 'hostile',
  },
  { name: 'root entry as a file', entries: [f('./')], expect: 'hostile' },
  { name: 'unsupported type: GNU sparse', entries: [{ name: 's', content: 'x', flag: 'S' }], expect: 'hostile' },
  { name: 'unsupported type: volume label', entries: [{ name: 'v', flag: 'V' }], expect: 'hostile' },
  {
    name: 'symlink planted by an earlier layer (apply mode)',
    pre: (root, out) => symlinkSync(out, join(root, 'etc')),
    entries: [f('etc/passwd')],
    opts: { mode: 'apply' },
    expect: 'hostile',
  },
  {
    name: 'symlink planted by an earlier layer, hardlink through it',
    pre: (root, out) => symlinkSync(out, join(root, 'lnk')),
    entries: [hard('h', 'lnk/secret')],
    opts: { mode: 'apply' },
    expect: 'hostile',
  },
  {
    name: 'symlink planted by an earlier layer, whiteout through it',
    pre: (root, out) => symlinkSync(out, join(root, 'lnk')),
    entries: [f('lnk/.wh.secret', '')],
    opts: { mode: 'apply' },
    expect: 'hostile',
  },
  {
    name: 'symlink planted by an earlier layer, opaque through it',
    pre: (root, out) => symlinkSync(out, join(root, 'lnk')),
    entries: [f('lnk/.wh..wh..opq', '')],
    opts: { mode: 'apply' },
    expect: 'hostile',
  },
  {
    name: "whiteout of an earlier layer's symlink removes only the link",
    pre: (root, out) => symlinkSync(join(out, 'secret'), join(root, 'lnk')),
    entries: [f('.wh.lnk', '')],
    opts: { mode: 'apply' },
    expect: (root) => assert.equal(describe(root), []),
  },
  // Directory metadata is queued until the end; a queued entry below a directory that is later
  // replaced must never be applied through whatever took the directory's place.
  {
    name: 'queued dir metadata: parent replaced by a symlink to /',
    entries: [dir('d'), evilDir('d/OUT/v'), sym('d', '/')],
    expect: only('d:symlink'),
  },
  {
    name: 'queued dir metadata: parent replaced by a relative symlink',
    entries: [dir('d'), evilDir('d/v'), sym('d', '../outside')],
    expect: only('d:symlink'),
  },
  {
    name: 'queued dir metadata onto a host file (xattr on a binary)',
    entries: [dir('d'), evilDir('d/OUT/bin'), sym('d', '/')],
    expect: only('d:symlink'),
  },
  {
    name: 'queued dir metadata: grandparent replaced by a symlink',
    entries: [evilDir('d/OUT/v'), sym('d', '/')],
    expect: only('d:symlink'),
  },
  {
    name: 'queued dir metadata: parent replaced by a file, then by a symlink',
    entries: [evilDir('d/OUT/v'), f('d'), sym('d', '/')],
    expect: only('d:symlink'),
  },
  {
    name: 'queued dir metadata: parent replaced by a file',
    entries: [dir('d'), evilDir('d/x'), f('d', 'ok')],
    expect: only('d:file'),
  },
  {
    name: 'queued dir metadata: parent whited out',
    entries: [evilDir('d/x'), wh('.wh.d')],
    expect: only('d:char'),
  },
  {
    name: 'queued dir metadata: parent whited out, then a symlink',
    entries: [evilDir('d/OUT/v'), wh('.wh.d'), sym('d', '/')],
    expect: only('d:symlink'),
  },
  {
    name: 'queued dir metadata: parent whited out, then a symlink (apply mode)',
    entries: [evilDir('d/OUT/v'), wh('.wh.d'), sym('d', '/')],
    opts: { mode: 'apply' },
    expect: only('d:symlink'),
  },
  {
    name: 'queued dir metadata: opaque parent purged (apply mode), then a symlink',
    pre: (root) => mkdirSync(join(root, 'p/d'), { recursive: true }),
    entries: [evilDir('p/d/OUT/v'), wh('p/.wh..wh..opq'), sym('p/d', '/')],
    opts: { mode: 'apply' },
    expect: only('p:dir', 'p/d:symlink'),
  },
  {
    name: 'queued root metadata with a symlink at the top',
    entries: [{ ...evilDir('./'), mode: 0o755 }, sym('d', '/')],
    expect: only('d:symlink'),
  },
];

function isolate(i: number) {
  const base = join(work, String(i));
  const root = join(base, 'root'),
    outside = join(base, 'outside');
  mkdirSync(root, { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret'), 'secret');
  mkdirSync(join(outside, 'v'), { mode: 0o755 });
  writeFileSync(join(outside, 'bin'), 'a host binary', { mode: 0o755 });
  return { base, root, outside };
}

cases.forEach((c, i) => {
  test(`breakout: ${c.name}`, async () => {
    const { base, root, outside } = isolate(i);
    const before = fingerprint(outside);
    c.pre?.(root, outside);
    const entries = c.entries.map((e) => ({
      ...e,
      name: e.name.replace('OUT', outside.slice(1)),
      linkname: e.linkname?.replace('OUT', outside),
    }));
    const tar = buildTar(entries);
    let err: unknown;
    try {
      await unpackLayer(Readable.from([tar]), MediaType.OciLayer, root, c.opts);
    } catch (e) {
      err = e;
    }
    if (c.expect === 'hostile') {
      assert.ok(err instanceof StoreError, `expected a StoreError, got ${err}`);
      assert.is(err.code, 'hostile-layer', (err as Error).message);
    } else {
      assert.is(err, undefined, String(err));
      c.expect(root);
    }
    assert.equal(fingerprint(outside), before, 'outside changed');
    assert.equal(readdirSync(base).sort(), ['outside', 'root'], 'something written beside the target');
  });
});

test('errors name the entry', async () => {
  const { root } = isolate(1000);
  try {
    await unpackLayer(Readable.from([buildTar([sym('a', '/'), f('a/passwd')])]), MediaType.OciLayer, root);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, '"a/passwd"');
    assert.match((e as Error).message, 'symlink "a"');
  }
});

test.after(() => {
  rmSync(work, { recursive: true, force: true });
});
test.run();
