// Where the per-run scratch state goes: a tmpfs when the machine has one we can use safely.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { chooseStateDir, cleanupStale, isTmpfs, makeRunDir } from '../src/state.js';

const runIsTmpfs = isTmpfs('/run');
const shmIsTmpfs = isTmpfs('/dev/shm');
const base = shmIsTmpfs ? mkdtempSync('/dev/shm/tsbuild-state-test-') : mkdtempSync('/tmp/tsbuild-state-test-');

// What each candidate under /dev/shm looks like, and whether it may be used.
const cases: { name: string; make: (p: string) => void; usable: boolean }[] = [
  { name: 'absent (made on the spot, private)', make: () => {}, usable: true },
  { name: 'a private directory of ours', make: (p) => mkdirSync(p, { mode: 0o700 }), usable: true },
  { name: 'a directory of ours others can read', make: (p) => { mkdirSync(p); chmodSync(p, 0o755); }, usable: true },
  { name: 'a directory others can write to', make: (p) => { mkdirSync(p); chmodSync(p, 0o777); }, usable: false },
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
    if (got === p) assert.ok(lstatSync(p).isDirectory() && (lstatSync(p).mode & 0o022) === 0, 'a real directory only we can write to');
  });
}

test('makeRunDir refuses a state directory others can write to', () => {
  const p = join(base, 'open');
  mkdirSync(p);
  chmodSync(p, 0o777);
  assert.throws(() => makeRunDir(p, 'x'), /only it can write to/);
  const ok = join(base, 'private');
  assert.is(makeRunDir(ok, 'x'), join(ok, 'x'));
});

test('cleanupStale never removes through a state directory that is a link or writable by others', async () => {
  for (const [name, make] of [
    ['link', (p: string, target: string) => symlinkSync(target, p)],
    ['open', (p: string, target: string) => { rmSync(target, { recursive: true }); mkdirSync(p); chmodSync(p, 0o777); mkdirSync(join(p, '999999999-1-aaaaaa')); }],
  ] as const) {
    const target = join(base, `victim-${name}`);
    mkdirSync(join(target, '999999999-1-aaaaaa'), { recursive: true }); // looks like a dead run's dir
    const p = join(base, `state-${name}`);
    make(p, target);
    await cleanupStale(p);
    const left = name === 'link' ? join(target, '999999999-1-aaaaaa') : join(p, '999999999-1-aaaaaa');
    assert.ok(existsSync(left), `${name}: left alone`);
  }
  const own = join(base, 'state-own');
  mkdirSync(join(own, '999999999-1-aaaaaa'), { recursive: true, mode: 0o700 });
  chmodSync(own, 0o700);
  await cleanupStale(own);
  assert.not.ok(existsSync(join(own, '999999999-1-aaaaaa')), 'a dead run in our own directory is removed');
});

test.after(() => rmSync(base, { recursive: true, force: true }));
test.run();
