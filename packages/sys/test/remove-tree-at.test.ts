// removeTreeAt (rm -r beneath directory fds): it removes every name below, including names that are
// not UTF-8 (a layer's or a COPY source's bytes), and never follows a planted symlink out of the tree.
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DIR_FLAGS, removeTreeAt } from '../src/beneath.js';

const base = mkdtempSync(join(tmpdir(), 'remove-tree-at-'));
test.after(() => rmSync(base, { recursive: true, force: true }));

/** Bytes of a name that is not UTF-8 (Latin-1 "café"), as a path below `dir`. */
const latin1 = (dir: string, name: string) => Buffer.concat([Buffer.from(dir + '/'), Buffer.from(name, 'latin1')]);

const cases: { name: string; plant: (tree: string, outside: string) => void }[] = [
  {
    name: 'a file whose name is not UTF-8',
    plant: (t) => writeFileSync(latin1(t, 'caf\u00e9'), 'x'),
  },
  {
    name: 'a directory whose name is not UTF-8, with a file in it',
    plant: (t) => {
      mkdirSync(latin1(t, 'd\u00e9j\u00e0'));
      writeFileSync(Buffer.concat([latin1(t, 'd\u00e9j\u00e0'), Buffer.from('/f')]), 'x');
    },
  },
  {
    name: 'symlinks to a host directory, at the top and below',
    plant: (t, out) => {
      symlinkSync(out, join(t, 'link'));
      mkdirSync(join(t, 'sub'));
      symlinkSync(out, join(t, 'sub', 'link'));
      symlinkSync(out, latin1(join(t, 'sub'), '\u00e9'));
    },
  },
];

for (const c of cases) {
  test(`removeTreeAt: ${c.name}`, () => {
    const dir = mkdtempSync(join(base, 'case-'));
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep'), 'host');
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'deep', 'er'), { recursive: true });
    c.plant(tree, outside);
    const fd = openSync(dir, DIR_FLAGS);
    try {
      removeTreeAt(fd, 'tree');
    } finally {
      closeSync(fd);
    }
    assert.not.ok(existsSync(tree), 'the tree is gone');
    assert.equal(readdirSync(outside), ['keep'], 'nothing outside was touched');
  });
}

test('removeTreeAt: a name that is not one component is refused', () => {
  const fd = openSync(base, DIR_FLAGS);
  try {
    for (const bad of ['', '.', '..', 'a/b']) assert.throws(() => removeTreeAt(fd, bad), /single path component/);
  } finally {
    closeSync(fd);
  }
});

test.run();
