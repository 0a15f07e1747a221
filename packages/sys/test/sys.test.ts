// Root-free tests of the shared primitives: process liveness and atomic writes.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ownedId, parseOwner, pidAlive, processStart, processStat, selfStart, writeFileAtomic } from '../src/index.js';

const deadPid = spawnSync('true').pid;
const initStart = processStart(1);

const liveness: [string, number, string | undefined, boolean][] = [
  ['this process', process.pid, undefined, true],
  ['this process, its start time', process.pid, selfStart(), true],
  ['this process, another start time (a reused pid)', process.pid, String(Number(selfStart()) + 1), false],
  ['init (EPERM would still be alive)', 1, initStart, true],
  ['a child that has exited', deadPid, undefined, false],
  ['pid 0', 0, undefined, false],
  ['a negative pid (a process group)', -1, undefined, false],
  ['not an integer', 1.5, undefined, false],
];
for (const [what, pid, start, want] of liveness) test(`pidAlive: ${what}`, () => assert.is(pidAlive(pid, start), want));

/** Polls `ok` (a state, not a time) until it holds; the deadline only bounds a failure. */
async function until(what: () => string, ok: () => boolean): Promise<void> {
  for (const end = Date.now() + 10_000; !ok(); await new Promise((r) => setImmediate(r)))
    if (Date.now() > end) throw new Error(what());
}

/**
 * A zombie: a shell starts a child that waits for a line on fd 3, then becomes `sleep`, which never
 * reaps it; the line is sent only once it is `sleep`, so the shell cannot have reaped the child. Until
 * its parent (or, once the parent ends, init, whenever it gets to it) reaps it, kill(pid, 0) still
 * succeeds, but the process is gone: what it owned (a lock, a sandbox's state directory and cgroup) is
 * free to sweep.
 */
test('pidAlive: a zombie (ended, not yet reaped) is not alive, with or without its start time', async () => {
  const parent = spawn('sh', ['-c', '(read x <&3) & echo $!; exec sleep 60 3<&-'], {
    stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
  });
  try {
    const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
    const child = Number(line.toString().trim());
    const comm = () => readFileSync(`/proc/${parent.pid}/comm`, 'utf8').trim();
    await until(
      () => `the shell never became sleep: ${comm()}`,
      () => comm() === 'sleep',
    );
    (parent.stdio[3] as NodeJS.WritableStream).write('\n');
    await until(
      () => `process ${child} never became a zombie: ${processStat(child)?.state}`,
      () => processStat(child)?.state === 'Z',
    );
    assert.is(pidAlive(child), false);
    assert.is(pidAlive(child, processStat(child)!.start), false);
  } finally {
    parent.kill('SIGKILL');
  }
});

test('processStart: this process has one, an exited one has none', () => {
  assert.match(processStart('self') ?? '', /^\d+$/);
  assert.is(processStart(process.pid), processStart('self'));
  assert.is(processStart(deadPid), undefined);
});

test('processStat: state, parent and start time of this process', () => {
  assert.equal(processStat('self'), { state: 'R', ppid: process.ppid, start: processStart('self') });
  assert.is(processStat(deadPid), undefined);
});

const owners: [string, { pid: number; start: string } | undefined][] = [
  [`ingest-${'12_34_'}0123456789ab`, { pid: 12, start: '34' }],
  [`.index.json.7_0_abcdefabcdef.tmp`, { pid: 7, start: '0' }],
  ['ingest-12_34_xyz', undefined],
  ['plain', undefined],
];
for (const [name, want] of owners) test(`parseOwner(${name})`, () => assert.equal(parseOwner(name), want));

test('ownedId names this process', () => {
  assert.equal(parseOwner(`x-${ownedId()}`), { pid: process.pid, start: selfStart() });
});

const cases: [string, { durable?: boolean; mode?: number }][] = [
  ['plain', {}],
  ['durable', { durable: true }],
  ['mode 0600', { mode: 0o600 }],
];
for (const [what, opts] of cases)
  test(`writeFileAtomic (${what}): replaces the file, leaves no temp file`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sys-atomic-'));
    try {
      const f = join(dir, 'f.json');
      writeFileSync(f, 'old');
      await writeFileAtomic(f, 'new', opts);
      assert.is(readFileSync(f, 'utf8'), 'new');
      assert.is(statSync(f).mode & 0o777, (opts.mode ?? 0o644) & ~process.umask());
      assert.equal(readdirSync(dir), ['f.json']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

// Two writers of one file at once, with the same pid and start time: two threads of one process here, or two CLIs
// in two pid namespaces sharing an install (the code cache, bin/tsbuild.cjs). A temp name made of the owner alone
// would be the same for both: one's O_EXCL open would fail, or, opened without it, one's bytes would land in the
// file the other renames into place. Each has a temp file of its own: both writes succeed, and the file is one of
// them, whole.
test('writeFileAtomic: writers with the same pid at once each write a temp file of their own', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sys-atomic-'));
  const target = join(dir, 'cache');
  const parts = ['a', 'b', 'c', 'd'].map((c) => Buffer.alloc(256 * 1024, c));
  await Promise.all(parts.map((p) => writeFileAtomic(target, p, { durable: true })));
  const got = readFileSync(target);
  assert.ok(
    parts.some((p) => p.equals(got)),
    'one write, whole',
  );
  assert.equal(readdirSync(dir), ['cache'], 'no temp file left');
  rmSync(dir, { recursive: true, force: true });
});

// The promise the stat cache's save stands on (one buffer refilled for every part): each part is written whole
// before the next is asked for. A writer that read ahead or queued parts would write the last filling many times.
test('writeFileAtomic: each part is written before the next is asked for (its buffer may be reused)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sys-atomic-'));
  const target = join(dir, 'out');
  const one = Buffer.alloc(4 << 20);
  async function* refilled() {
    for (const c of 'ABCD') {
      one.fill(c);
      yield one;
    }
  }
  await writeFileAtomic(target, refilled(), { durable: true });
  const got = readFileSync(target);
  assert.is(got.length, 4 * one.length);
  for (const [i, c] of [...'ABCD'].entries())
    assert.ok(got.subarray(i * one.length, (i + 1) * one.length).equals(Buffer.alloc(one.length, c)), `part ${c}`);
  rmSync(dir, { recursive: true, force: true });
});

test('writeFileAtomic: a failed rename leaves the target and no temp file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sys-atomic-'));
  try {
    const target = join(dir, 'd');
    mkdirSync(join(target, 'child'), { recursive: true }); // rename(file, non-empty dir) fails
    await writeFileAtomic(target, 'x', { durable: true }).then(
      () => assert.unreachable('should have failed'),
      (e: NodeJS.ErrnoException) => assert.ok(['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(e.code!), e.code),
    );
    assert.equal(readdirSync(dir), ['d']);
    assert.equal(readdirSync(target), ['child']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeFileAtomic: the temp file goes to tmpDir when asked', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sys-atomic-'));
  try {
    mkdirSync(join(dir, 'tmp'));
    await writeFileAtomic(join(dir, 'f'), 'x', { tmpDir: join(dir, 'tmp'), durable: true });
    assert.equal(readdirSync(join(dir, 'tmp')), []);
    assert.is(readFileSync(join(dir, 'f'), 'utf8'), 'x');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
