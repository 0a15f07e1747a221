// Where the per-run scratch state goes: a tmpfs when the machine has one we can use safely.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  chooseStateDir,
  cleanupStale,
  isTmpfs,
  makeRunDir,
  stateDirCandidates,
  type StateCandidate,
} from '../src/state.js';

// The choice is checked against filesystems the test mounts, not the host's /run and /dev/shm
// (whose kinds decide which branches a given machine would reach): a tmpfs, a read-only tmpfs,
// and a ramfs (a memory filesystem that is not a tmpfs, standing in for a disk-backed /run).
const base = mkdtempSync(join(tmpdir(), 'tsbuild-state-test-'));
const mounted: string[] = [];
function mount(name: string, type: string, opts = 'size=4m'): string {
  const dir = join(base, name);
  mkdirSync(dir);
  execFileSync('mount', ['-t', type, '-o', opts, type, dir]);
  mounted.push(dir);
  return dir;
}
function unmountAll(): void {
  for (let m = mounted.pop(); m; m = mounted.pop()) execFileSync('umount', [m]);
  rmSync(base, { recursive: true, force: true });
}
process.on('exit', unmountAll); // also when a later mount (or a test) throws
const tmpfs = mount('tmpfs', 'tmpfs');
const roTmpfs = mount('ro-tmpfs', 'tmpfs', 'ro,size=1m');
const ramfs = mount('ramfs', 'ramfs', 'mode=755');
// Like /dev/shm: world-writable, sticky.
const shm = join(tmpfs, 'shm');
mkdirSync(shm);
chmodSync(shm, 0o1777);

test('the test filesystems are what the cases say', () => {
  assert.ok(isTmpfs(tmpfs) && isTmpfs(roTmpfs));
  assert.not.ok(isTmpfs(ramfs));
});

const Fallback = '/fallback';
let n = 0;
// One candidate each (and the fallback): whether it is taken, and what is left on disk.
type Case = { name: string; cand: () => StateCandidate; taken: boolean };
const own = (p: string, mode: number) => {
  mkdirSync(p);
  chmodSync(p, mode);
};
const cases: Case[] = [
  { name: 'on a tmpfs, tmpfs wanted', cand: () => ({ dir: join(tmpfs, `sb-${n++}`), tmpfs: true }), taken: true },
  {
    name: 'not on a tmpfs, tmpfs wanted (a disk-backed /run)',
    cand: () => ({ dir: join(ramfs, 'sb'), tmpfs: true }),
    taken: false,
  },
  { name: 'not on a tmpfs, any filesystem will do', cand: () => ({ dir: join(ramfs, 'sb') }), taken: true },
  { name: 'parent not writable (read-only)', cand: () => ({ dir: join(roTmpfs, 'sb'), tmpfs: true }), taken: false },
  { name: 'parent missing', cand: () => ({ dir: join(base, 'missing', 'sb') }), taken: false },
  { name: 'shared parent: absent (made on the spot, private)', cand: () => claim(() => {}), taken: true },
  { name: 'shared parent: a private directory of ours', cand: () => claim((p) => own(p, 0o700)), taken: true },
  { name: 'shared parent: ours, others can read', cand: () => claim((p) => own(p, 0o755)), taken: true },
  { name: 'shared parent: others can write to it', cand: () => claim((p) => own(p, 0o777)), taken: false },
  { name: 'shared parent: group can write to it', cand: () => claim((p) => own(p, 0o770)), taken: false },
  {
    name: 'shared parent: owned by another user',
    cand: () =>
      claim((p) => {
        own(p, 0o700);
        chownSync(p, 65534, 65534);
      }),
    taken: false,
  },
  {
    name: 'shared parent: a symlink to a private directory',
    cand: () =>
      claim((p) => {
        own(`${p}-target`, 0o700);
        symlinkSync(`${p}-target`, p);
      }),
    taken: false,
  },
  { name: 'shared parent: a file', cand: () => claim((p) => writeFileSync(p, '')), taken: false },
  {
    name: 'shared parent on a non-tmpfs, tmpfs wanted',
    cand: () => ({ dir: join(ramfs, `claimed-${n++}`), tmpfs: true, claim: true }),
    taken: false,
  },
];
function claim(make: (p: string) => void): StateCandidate {
  const dir = join(shm, `sb-${n++}`);
  make(dir);
  return { dir, tmpfs: true, claim: true };
}

for (const c of cases) {
  test(`state dir candidate ${c.name}: ${c.taken ? 'taken' : 'passed over'}`, () => {
    const cand = c.cand();
    const got = chooseStateDir([cand], Fallback);
    assert.is(got, c.taken ? cand.dir : Fallback);
    if (cand.claim && c.taken) {
      const st = lstatSync(cand.dir);
      const ours = st.isDirectory() && st.uid === process.getuid!() && (st.mode & 0o022) === 0;
      assert.ok(ours, 'a real directory only we can write to');
    }
  });
}

test('the first candidate that fits is taken, in order', () => {
  const disk = { dir: join(ramfs, 'first'), tmpfs: true };
  const shared = claim(() => {});
  const any = { dir: join(ramfs, 'any') };
  assert.is(chooseStateDir([disk, shared, any], Fallback), shared.dir);
  assert.is(chooseStateDir([disk, any, shared], Fallback), any.dir);
  assert.is(chooseStateDir([disk], Fallback), Fallback);
  assert.is(chooseStateDir([], Fallback), Fallback);
});

test('the default candidates: /run on a tmpfs, our directory in /dev/shm, /run on anything', () => {
  assert.equal(stateDirCandidates(1234), [
    { dir: '/run/tsbuild-sandbox', tmpfs: true },
    { dir: '/dev/shm/tsbuild-sandbox-1234', tmpfs: true, claim: true },
    { dir: '/run/tsbuild-sandbox' },
  ]);
});

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
    [
      'open',
      (p: string, target: string) => {
        rmSync(target, { recursive: true });
        mkdirSync(p);
        chmodSync(p, 0o777);
        mkdirSync(join(p, '999999999-1-aaaaaa'));
      },
    ],
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

test.after(unmountAll);
test.run();
