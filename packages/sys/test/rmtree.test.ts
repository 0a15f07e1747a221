// removeTreeBeneath: removes a tree without following a symlink anywhere in it. The race with a
// container swapping names mid-removal is in test/container-races.test.ts; these are the static cases.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
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

// A tree's directories may lack the owner's write or read permission (a 0555 directory from a build
// context's tar): without CAP_DAC_OVERRIDE (root in a container that dropped it) the removal gives the
// directory u+rwx first, as it is removed anyway. Run in a child without that capability.
const modes: [string, number][] = [
  ['0555 (no write)', 0o555],
  ['0111 (no read)', 0o111],
  ['0000', 0o000],
];
test('removeTreeBeneath: directories without u+rwx, without CAP_DAC_OVERRIDE', () => {
  const rmtree = new URL('../src/rmtree.js', import.meta.url).href;
  for (const [name, mode] of modes) {
    const t = join(base, `modes-${++n}`);
    mkdirSync(join(t, 'd/sub'), { recursive: true });
    writeFileSync(join(t, 'd/sub/f'), 'x');
    writeFileSync(join(t, 'd/f'), 'x');
    chmodSync(join(t, 'd/sub'), mode);
    chmodSync(join(t, 'd'), mode);
    const r = spawnSync(
      'setpriv',
      [
        '--bounding-set',
        '-dac_override,-dac_read_search',
        '--inh-caps',
        '-dac_override,-dac_read_search',
        'node',
        '--input-type=module',
        '-e',
        `(await import(${JSON.stringify(rmtree)})).removeTreeBeneath(process.argv[1])`,
        t,
      ],
      { encoding: 'utf8' },
    );
    assert.is(r.status, 0, `${name}: ${r.stderr}`);
    assert.not.ok(existsSync(t), name);
  }
});

test('removeTreeBeneath: a missing path is fine', () => {
  removeTreeBeneath(join(base, 'never-made'));
});

test.run();
