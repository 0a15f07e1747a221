// Where the per-run scratch state goes: a tmpfs when the machine has one we can use safely.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { chooseStateDir, isTmpfs, makeRunDir } from '../src/state.js';

const runIsTmpfs = isTmpfs('/run');
const shmIsTmpfs = isTmpfs('/dev/shm');
const base = shmIsTmpfs ? mkdtempSync('/dev/shm/tsbuild-state-test-') : mkdtempSync('/tmp/tsbuild-state-test-');

// What each candidate under /dev/shm looks like, and whether it may be used.
const cases: { name: string; make: (p: string) => void; usable: boolean }[] = [
  { name: 'absent (made on first use)', make: () => {}, usable: true },
  { name: 'a private directory of ours', make: (p) => mkdirSync(p, { mode: 0o700 }), usable: true },
  { name: 'a directory others can enter', make: (p) => { mkdirSync(p); chmodSync(p, 0o777); }, usable: false },
  { name: 'a symlink to a private directory', make: (p) => { mkdirSync(`${p}-target`, { mode: 0o700 }); symlinkSync(`${p}-target`, p); }, usable: false },
];

for (const [i, c] of cases.entries()) {
  test(`state dir candidate in /dev/shm: ${c.name}`, () => {
    const p = join(base, `cand-${i}`);
    c.make(p);
    const want = runIsTmpfs ? '/run/tsbuild-sandbox' : shmIsTmpfs && c.usable ? p : undefined;
    const got = chooseStateDir(p);
    if (want) assert.is(got, want);
    else assert.is.not(got, p);
  });
}

test('makeRunDir refuses a state directory others can enter', () => {
  const p = join(base, 'open');
  mkdirSync(p);
  chmodSync(p, 0o777);
  assert.throws(() => makeRunDir(p, 'x'), /not a private directory/);
  const ok = join(base, 'private');
  assert.is(makeRunDir(ok, 'x'), join(ok, 'x'));
});

test.after(() => rmSync(base, { recursive: true, force: true }));
test.run();
