// openBeneath (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) and its fallback walkBeneath (one
// O_NOFOLLOW component at a time, for kernels without openat2) must agree: open what is a real
// directory below the fd, refuse every symlink on the way or at the end, never leave the tree.
import {
  closeSync,
  constants as fsc,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DIR_FLAGS, openBeneath, walkBeneath } from '../src/beneath.js';

const work = mkdtempSync(join(tmpdir(), 'beneath-'));
const root = join(work, 'root');
mkdirSync(join(root, 'a', 'b'), { recursive: true });
writeFileSync(join(root, 'f'), 'x');
symlinkSync('/', join(root, 'toroot'));
symlinkSync('a', join(root, 'rel'));
symlinkSync(join(work, 'outside'), join(root, 'out'));
mkdirSync(join(work, 'outside', 'b'), { recursive: true });

const cases: { path: string; want: string }[] = [
  { path: 'a', want: 'a' },
  { path: 'a/b', want: 'a/b' },
  // A symlink anywhere is refused: ELOOP, or ENOTDIR where O_DIRECTORY is checked first (the
  // last component; every component of the walk).
  { path: 'toroot', want: 'refused' },
  { path: 'toroot/etc', want: 'refused' },
  { path: 'rel', want: 'refused' },
  { path: 'rel/b', want: 'refused' },
  { path: 'out/b', want: 'refused' },
  { path: 'f', want: 'ENOTDIR' },
  { path: 'f/x', want: 'ENOTDIR' },
  { path: 'missing', want: 'ENOENT' },
  { path: 'a/missing/b', want: 'ENOENT' },
];

const rootFd = openSync(root, fsc.O_RDONLY | fsc.O_DIRECTORY);
const walk = (fd: number, p: string, f: number) => walkBeneath(fd, p, f, 0);
for (const [name, open] of [
  ['openBeneath', openBeneath],
  ['walkBeneath', walk],
] as const) {
  for (const c of cases) {
    test(`${name} ${c.path} → ${c.want}`, () => {
      let got: string;
      try {
        const fd = open(rootFd, c.path, DIR_FLAGS);
        const ino = fstatSync(fd).ino;
        closeSync(fd);
        got = ino === statSync(join(root, c.path)).ino ? c.path : `another inode than ${c.path}`;
      } catch (e) {
        got = (e as { code?: string }).code ?? String(e);
        if (c.want === 'refused' && (got === 'ELOOP' || got === 'ENOTDIR')) got = 'refused';
      }
      assert.is(got, c.want);
    });
  }
}

// A one-component path is opened through at() (no openat2): its errors still name the path given, as openat2's do,
// never the /proc/self/fd path at() made of it.
test('openBeneath names the path given in its errors, one component or several', () => {
  for (const p of ['missing', 'toroot', 'a/missing']) {
    const e = (() => {
      try {
        closeSync(openBeneath(rootFd, p, fsc.O_RDONLY));
      } catch (err) {
        return err as Error;
      }
      return undefined;
    })();
    assert.ok(e, p);
    assert.match(e.message, p);
    assert.not.match(e.message, '/proc/');
  }
});

test.after(() => {
  closeSync(rootFd);
  rmSync(work, { recursive: true, force: true });
});
test.run();
