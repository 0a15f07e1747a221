// removeTreeBeneath: removes a tree without following a symlink anywhere in it. The race with a
// container swapping names mid-removal is in test/container-races.test.ts; these are the static cases.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeTreeBeneath } from '../src/rmtree.js';

const base = mkdtempSync(join(tmpdir(), 'tsbuild-rmtree-'));
process.on('exit', () => rmSync(base, { recursive: true, force: true }));
let n = 0;

/** A "host" directory with one file, which must survive every case. */
function outside(): string {
  const d = join(base, `outside-${++n}`);
  mkdirSync(d);
  writeFileSync(join(d, 'keep'), 'host\n');
  return d;
}

const cases: { name: string; make: (tree: string, host: string) => void }[] = [
  {
    name: 'plain files and nested directories',
    make: (t) => {
      mkdirSync(join(t, 'a/b/c'), { recursive: true });
      writeFileSync(join(t, 'a/b/c/f'), 'x');
      writeFileSync(join(t, 'top'), 'x');
    },
  },
  {
    name: 'a symlink to a host directory, at the top and deep down',
    make: (t, h) => {
      mkdirSync(join(t, 'a/b'), { recursive: true });
      symlinkSync(h, join(t, 'link'));
      symlinkSync(h, join(t, 'a/b/link'));
      symlinkSync(join(h, 'keep'), join(t, 'a/file-link'));
    },
  },
  {
    name: 'an empty directory and a dangling link',
    make: (t) => {
      mkdirSync(join(t, 'empty'));
      symlinkSync('/nonexistent/x', join(t, 'dangling'));
    },
  },
  // A container can mkdir and cd in a loop: deeper than the call stack (a recursive walk threw
  // RangeError at 6000 levels) and than the directory fds the walk keeps open (1024).
  {
    name: 'a tree 8000 directories deep, with a link to a host directory at the bottom',
    make: (t, h) => {
      const cwd = process.cwd();
      try {
        process.chdir(t);
        for (let i = 0; i < 8000; i++) {
          mkdirSync('d');
          process.chdir('d');
        }
        writeFileSync('f', 'x');
        symlinkSync(h, 'link');
      } finally {
        process.chdir(cwd);
      }
    },
  },
];

for (const c of cases) {
  test(`removeTreeBeneath: ${c.name}`, () => {
    const host = outside();
    const tree = join(base, `tree-${++n}`);
    mkdirSync(tree);
    c.make(tree, host);
    removeTreeBeneath(tree);
    assert.not.ok(existsSync(tree));
    assert.equal(readdirSync(host), ['keep']);
  });
}

test('removeTreeBeneath: a path that is itself a symlink loses the link, not the target', () => {
  const host = outside();
  const link = join(base, `link-${++n}`);
  symlinkSync(host, link);
  removeTreeBeneath(link);
  assert.not.ok(existsSync(link));
  assert.equal(readdirSync(host), ['keep']);
});

test('removeTreeBeneath: a missing path is fine', () => {
  removeTreeBeneath(join(base, 'never-made'));
});

test.run();
