// Beneath (src/rootfs/beneath.ts): every operation on a tree that holds planted symlinks (to a
// scratch "host" dir outside it, as a hostile source would leave them) stays inside the tree:
// it fails on a link on the way, or replaces a link in the last place without following it. The
// host dir is fingerprinted before and after every row.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { treeFingerprint } from '@tsbuild/testkit';
import { Beneath } from '../src/rootfs/beneath-tree.js';
import { encodeName } from '../src/context/listing.js';

const base = mkdtempSync(join(tmpdir(), 'tsbuild-beneath-'));
let n = 0;

/**
 * A tree: `l` → the host dir, `f` → a host file, `n` → a host name not there, a real dir `d`,
 * d/up → ../../host.
 */
function setup(): { tree: string; host: string } {
  const root = join(base, String(n++));
  const tree = join(root, 'tree');
  const host = join(root, 'host');
  mkdirSync(join(tree, 'd'), { recursive: true });
  mkdirSync(join(host, 'sub'), { recursive: true });
  writeFileSync(join(host, 'file'), 'host\n');
  symlinkSync(host, join(tree, 'l'));
  symlinkSync(join(host, 'file'), join(tree, 'f'));
  symlinkSync(join(host, 'new'), join(tree, 'n'));
  symlinkSync('../../host', join(tree, 'd', 'up'));
  return { tree, host };
}

const owned = Buffer.from('owned');
const null13 = { type: 'char', major: 1, minor: 3 } as const;
const meta = { mode: 0o4777, uid: 1234, gid: 1234, mtime: new Date(0) };
const rows: { name: string; op: (b: Beneath) => void; error?: string; after?: (tree: string) => void }[] = [
  { name: 'writeFile through a linked dir', op: (b) => b.writeFile('l/x', owned, meta), error: 'ELOOP' },
  { name: 'writeFile through a relative link', op: (b) => b.writeFile('d/up/x', owned, meta), error: 'ELOOP' },
  { name: 'writeFile onto a link to a file', op: (b) => b.writeFile('f', owned, meta), error: 'EEXIST' },
  { name: 'writeFile onto a dangling link', op: (b) => b.writeFile('n', owned, meta), error: 'EEXIST' },
  { name: 'writeFile with .. out of the tree', op: (b) => b.writeFile('../host/x', owned, meta), error: 'EXDEV' },
  { name: 'mkdir through a linked dir', op: (b) => b.mkdir('l/newdir', 0o777, 1, 1), error: 'ELOOP' },
  { name: 'mkdir -p through a linked dir', op: (b) => b.mkdir('l/a/b', 0o777, 1, 1, true), error: 'ELOOP' },
  { name: 'symlink through a linked dir', op: (b) => b.symlink('l/s', '/x', 1, 1, new Date(0)), error: 'ELOOP' },
  { name: 'mknod through a linked dir', op: (b) => b.mknod('l/c', null13, meta), error: 'ELOOP' },
  { name: 'mknod through a relative link', op: (b) => b.mknod('d/up/c', { type: 'fifo' }, meta), error: 'ELOOP' },
  { name: 'mknod onto a dangling link', op: (b) => b.mknod('n', null13, meta), error: 'EEXIST' },
  { name: 'hard link through a linked dir', op: (b) => b.link('l/h', join(base, 'src')), error: 'ELOOP' },
  { name: 'linkWithin from a linked dir', op: (b) => b.linkWithin('d/h', 'l/file'), error: 'ELOOP' },
  {
    name: 'linkWithin into a linked dir',
    op: (b) => {
      b.writeFile('d/x', owned, meta);
      b.linkWithin('l/h', 'd/x');
    },
    error: 'ELOOP',
  },
  {
    name: 'linkWithin onto a link to a file',
    op: (b) => {
      b.writeFile('d/x', owned, meta);
      b.linkWithin('f', 'd/x');
    },
    error: 'EEXIST',
  },
  {
    name: 'linkWithin of a symlink links the symlink, never its host target',
    op: (b) => b.linkWithin('d/h', 'f'),
    after: (tree) => assert.ok(lstatSync(join(tree, 'd', 'h')).isSymbolicLink()),
  },
  {
    name: 'linkWithin: one inode, two names',
    op: (b) => {
      b.writeFile('d/x', owned, meta);
      b.linkWithin('h', 'd/x');
    },
    after: (tree) => {
      assert.is(lstatSync(join(tree, 'h')).ino, lstatSync(join(tree, 'd', 'x')).ino);
      assert.is(lstatSync(join(tree, 'h')).nlink, 2);
    },
  },
  { name: 'times of a linked dir', op: (b) => b.setDirTimes('l', new Date(0)), error: 'ELOOP|ENOTDIR' },
  { name: 'remove through a linked dir', op: (b) => b.remove('l/sub'), error: 'ELOOP' },
  {
    name: 'remove of a link removes the link only',
    op: (b) => {
      b.remove('l');
      b.remove('f');
      b.remove('d');
    },
    after: (tree) => assert.equal(readdirSync(tree), ['n']),
  },
  {
    name: 'remove, then writeFile, replaces a link to a file by a file',
    op: (b) => {
      b.remove('f');
      b.writeFile('f', owned, meta);
    },
    after: (tree) => {
      assert.is(readFileSync(join(tree, 'f'), 'utf8'), 'owned');
      assert.is(lstatSync(join(tree, 'f')).mode & 0o7777, 0o4777);
      assert.is(lstatSync(join(tree, 'f')).uid, 1234);
    },
  },
  {
    name: 'a symlink of its own: made, owned and dated without following it',
    op: (b) => b.symlink('d/s', join(base, 'nothing'), 1234, 1234, new Date(5000)),
    after: (tree) => {
      const st = lstatSync(join(tree, 'd', 's'));
      assert.ok(st.isSymbolicLink());
      assert.is(st.uid, 1234);
      assert.is(st.mtimeMs, 5000);
    },
  },
  {
    name: 'a device node and a FIFO of their own: numbers, mode (umask or not), owner and time',
    op: (b) => {
      b.mknod('d/c', null13, { ...meta, mode: 0o666 });
      b.mknod('d/b', { type: 'block', major: 7, minor: 300 }, { ...meta, mode: 0o640 });
      b.mknod('d/p', { type: 'fifo' }, { ...meta, mode: 0o622 });
    },
    after: (tree) => {
      const [c, blk, p] = ['c', 'b', 'p'].map((n) => lstatSync(join(tree, 'd', n)));
      assert.ok(c.isCharacterDevice() && blk.isBlockDevice() && p.isFIFO());
      // glibc's makedev: 1,3 is 0x103; 7,300 puts the minor's high bits above the major's.
      assert.is(c.rdev, 0x103);
      assert.is(blk.rdev, (7 << 8) | (300 & 0xff) | ((300 & ~0xff) << 12));
      assert.equal(
        [c, blk, p].map((st) => st.mode & 0o7777),
        [0o666, 0o640, 0o622],
      );
      assert.equal([c.uid, c.gid, c.mtimeMs], [1234, 1234, 0]);
    },
  },
  {
    name: 'a name that is not UTF-8 keeps its bytes',
    op: (b) => b.writeFile('d/b\udcff', Buffer.from('x'), meta),
    after: (tree) => {
      const path = Buffer.concat([Buffer.from(`${tree}/d/`), encodeName('b\udcff')]);
      assert.is(readFileSync(path, 'utf8'), 'x');
    },
  },
];

writeFileSync(join(base, 'src'), 'source\n');

for (const row of rows) {
  test(row.name, () => {
    const { tree, host } = setup();
    const before = treeFingerprint(host);
    const b = new Beneath(tree);
    try {
      const failed = (e: NodeJS.ErrnoException) => row.error!.split('|').includes(e.code!);
      if (row.error) assert.throws(() => row.op(b), failed, `expected ${row.error}`);
      else row.op(b);
    } finally {
      b.close();
    }
    assert.equal(treeFingerprint(host), before, 'the host dir changed');
    row.after?.(tree);
  });
}

test.after(() => rmSync(base, { recursive: true, force: true }));
test.run();
