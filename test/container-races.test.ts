// A hostile container racing the host tools that read or delete its files by path (issue 14):
// it swaps a directory with a symlink to a host directory, atomically and without pause
// (fixtures/exchange), while `tsbuild commit` walks its upperdir or `tsbuild volume rm -f`
// deletes its volume. The host directory must never end up in a layer, nor lose a file.
// test-runner: long
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { have, skip } from '@tsbuild/testkit';
import { Base, cleanup, ok, repo, storeWithBase, tempDir, tsbuild, tsbuildAsync } from './helpers/cli.js';

const root = storeWithBase();
const t = (args: string[]) => tsbuild(args, { root });
const dirs: string[] = [root];
const started: string[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const FILES = 64;
/** A "host" directory full of secrets the container knows the path of, but cannot see. */
function hostScratch(): string {
  const d = tempDir('host-scratch');
  dirs.push(d);
  for (let i = 0; i < FILES; i++) writeFileSync(join(d, `secret-${i}`), `HOST-SECRET-${i}\n`);
  return d;
}

let tools: string | undefined;
function exchangeTool(): string | undefined {
  if (tools) return tools;
  if (!have('cc')) return undefined;
  tools = tempDir('exchange');
  dirs.push(tools);
  const src = join(repo, 'fixtures', 'exchange', 'exchange.c');
  execFileSync('cc', ['-O2', '-static', '-o', join(tools, 'exchange'), src]);
  return tools;
}

const PAIRS = 8;

/**
 * Starts a detached container that makes PAIRS directories `${base}/dN` full of files, each with a
 * symlink `${base}/lN` to `scratch` beside it, and swaps every pair without pause; returns once the
 * swapping has begun.
 */
async function swapper(name: string, base: string, scratch: string, extra: string[] = []): Promise<void> {
  const pairs = Array.from({ length: PAIRS }, (_, n) => `${base}/d${n} ${base}/l${n}`).join(' ');
  const script =
    `for n in $(seq 0 ${PAIRS - 1}); do mkdir -p ${base}/d$n && ln -s ${scratch} ${base}/l$n && ` +
    `for i in $(seq 1 ${FILES}); do echo in > ${base}/d$n/f$i; done; done && exec /x/exchange /ready ${pairs}`;
  ok(t(['run', '-d', '--name', name, '-v', `${tools}:/x:ro`, ...extra, Base, 'sh', '-c', script]));
  started.push(name);
  for (let i = 0; i < 300; i++) {
    if (t(['exec', name, 'test', '-e', '/ready']).code === 0) return;
    await sleep(50);
  }
  throw new Error(`container ${name} did not start swapping: ${t(['logs', name]).stdout}`);
}

test.after(() => {
  for (const n of started) t(['rm', '-f', n]);
  cleanup(...dirs);
});

test('commit of a container that swaps a directory with a symlink to the host never takes host files', async () => {
  if (!exchangeTool()) return skip('no C compiler (cc) to build fixtures/exchange');
  const scratch = hostScratch();
  await swapper('race-commit', '/w', scratch);
  for (let i = 1; i <= 4; i++) {
    const tag = `race/commit:${i}`;
    ok(t(['commit', 'race-commit', tag]), `commit ${i}`);
    // Everything the new image holds under the two names, by name and by content.
    const r = ok(t(['run', '--rm', tag, 'sh', '-c', 'find /w -xdev; cat /w/d*/* 2>/dev/null; true']));
    assert.not.match(r.stdout, /secret-|HOST-SECRET/, `commit ${i} took host files: ${r.stdout.slice(0, 400)}`);
    assert.match(r.stdout, /^\/w\/[dl]0\/f1$/m, "the container's own files are in the image");
  }
  // The commit thawed the container: it still runs and answers.
  assert.is(t(['exec', 'race-commit', 'true']).code, 0);
  assert.is(readdirSync(scratch).length, FILES);
});

test('commit --pause=false of such a container: the live walk never follows a swapped directory', async () => {
  if (!exchangeTool()) return skip('no C compiler (cc) to build fixtures/exchange');
  const scratch = hostScratch();
  await swapper('race-live', '/w', scratch);
  let made = 0;
  for (let i = 1; i <= 6; i++) {
    const tag = `race/live:${i}`;
    const c = t(['commit', '--pause=false', 'race-live', tag]);
    if (c.code !== 0) {
      // Caught in the act: the walk refuses the symlink where a directory was, and says so.
      assert.match(c.stderr, /changed while it was read/, c.stderr);
      assert.not.match(c.stderr, /\n\s+at /, 'no stack trace');
      continue;
    }
    made++;
    const r = ok(t(['run', '--rm', tag, 'sh', '-c', 'find /w -xdev; cat /w/d*/* 2>/dev/null; true']));
    assert.not.match(r.stdout, /secret-|HOST-SECRET/, `commit ${i} took host files: ${r.stdout.slice(0, 400)}`);
  }
  // Never paused: it swapped all along, and still runs.
  assert.is(t(['exec', 'race-live', 'true']).code, 0);
  assert.is(readdirSync(scratch).length, FILES);
  console.log(`  (${made} of 6 unpaused commits completed; the others were refused mid-walk)`);
});

test('volume rm -f of a volume a container swaps a directory in leaves the host directory alone', async () => {
  if (!exchangeTool()) return skip('no C compiler (cc) to build fixtures/exchange');
  for (let round = 1; round <= 3; round++) {
    const scratch = hostScratch();
    const vol = `race-vol-${round}`;
    await swapper(`race-vol-${round}`, '/v', scratch, ['-v', `${vol}:/v`]);
    ok(t(['volume', 'rm', '-f', vol]), `volume rm -f (round ${round})`);
    const left = readdirSync(scratch).filter((n) => readFileSync(join(scratch, n), 'utf8').startsWith('HOST-SECRET'));
    assert.is(left.length, FILES, `round ${round}: host files deleted through the volume: ${FILES - left.length}`);
    assert.not.match(ok(t(['volume', 'ls'])).stdout, new RegExp(vol));
    t(['rm', '-f', `race-vol-${round}`]);
  }
});

test('exec: the launcher entering the container is closed to it while it waits in execve (CVE-2019-5736)', async () => {
  if (!exchangeTool()) return skip('no C compiler (cc) to build the probe');
  // The probe (a static helper of the sandbox tests) holds a write lease on the binary that
  // `tsbuild exec` runs: the exec's launcher child, already in the container's pid namespace,
  // waits inside execve until the probe has tried its /proc/PID/exe and /proc/PID/mem.
  const w = tempDir('lease');
  dirs.push(w);
  const probe = join(repo, 'packages', 'sandbox', 'test', 'fixtures', 'probe.c');
  execFileSync('cc', ['-O2', '-static', '-o', join(w, 'probe'), probe]);
  execFileSync('cp', [join(w, 'probe'), join(w, 'target')]);
  const script = '/w/probe lease /w/target /w; exec sleep 300';
  ok(t(['run', '-d', '--name', 'race-exec', '-v', `${w}:/w`, Base, 'sh', '-c', script]));
  started.push('race-exec');
  for (let i = 0; i < 300 && !readdirSync(w).includes('leased'); i++) await sleep(50);
  assert.ok(readdirSync(w).includes('leased'), `the probe did not take its lease: ${t(['logs', 'race-exec']).stdout}`);
  assert.is(ok(t(['exec', 'race-exec', '/w/target', 'euid'])).stdout, 'euid=0\n');
  const report = readFileSync(join(w, 'report'), 'utf8');
  const closed = /^pid=\d+ exe=E\w+ path=E\w+ mem=E\w+\n$/;
  assert.match(report, closed, `the launcher was reachable from the container: ${report}`);
});

/** Whether process `pid` or one of its descendants has a file open whose path ends with `suffix`. */
function hasOpen(pid: number, suffix: string): boolean {
  let fds: string[] = [];
  let kids: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean);
  } catch {
    return false; // ended
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).endsWith(suffix)) return true;
    } catch {
      /* closed meanwhile */
    }
  }
  return kids.some((k) => hasOpen(Number(k), suffix));
}

/** Sends SIGINT twice (the second makes tsbuild exit at once, thawing) and waits for the exit. */
async function interrupt(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGINT');
  await new Promise<void>((r) => c.stderr!.on('data', (b: Buffer) => /interrupted/.test(String(b)) && r()));
  c.kill('SIGINT');
  await exited;
}

// The first of two commits to finish thaws the container: were the second still walking then, it would
// walk a running container (the race of the first test). The second waits for the first instead. A
// sparse file of 256 GiB makes each walk last far longer than the test needs it to.
test('two commits of one running container at once: the second walks only once the first is over', async () => {
  const big = '/big-sparse';
  const script = `dd if=/dev/zero of=${big} bs=1 count=0 seek=256G 2>/dev/null; touch /ready; exec sleep 1000`;
  ok(t(['run', '-d', '--name', 'race-twice', Base, 'sh', '-c', script]));
  started.push('race-twice');
  for (let i = 0; i < 300 && t(['exec', 'race-twice', 'test', '-e', '/ready']).code !== 0; i++) await sleep(50);
  const a = tsbuildAsync(['commit', 'race-twice', 'race/twice:a'], { root });
  let b: ChildProcess | undefined;
  try {
    for (let i = 0; i < 600 && !hasOpen(a.pid!, big); i++) await sleep(50);
    assert.ok(hasOpen(a.pid!, big), 'the first commit never began its walk');
    b = tsbuildAsync(['commit', 'race-twice', 'race/twice:b'], { root });
    // B gets every chance to walk alongside A (it would within a second); a bound, not a timed assertion.
    for (let i = 0; i < 200 && !hasOpen(b.pid!, big); i++) await sleep(50);
    assert.not.ok(hasOpen(b.pid!, big), 'the second commit walked the container while the first still did');
    assert.is(a.exitCode, null, 'the first commit ended before the check');
    await interrupt(a);
    // A is gone (its exit thawed the container, its lock is stale): B goes on, freezing it anew.
    for (let i = 0; i < 600 && !hasOpen(b.pid!, big); i++) await sleep(50);
    assert.ok(hasOpen(b.pid!, big), 'the second commit did not go on once the first had ended');
  } finally {
    await interrupt(a);
    if (b) await interrupt(b);
  }
  // Neither finished, and the container runs again.
  assert.is(t(['exec', 'race-twice', 'true']).code, 0);
  assert.is.not(t(['images']).stdout.includes('race/twice'), true);
});

// A commit killed with SIGKILL cannot thaw: its container stays paused (there is no `unpause`). `stop`
// (SIGKILL after its timeout) and `rm -f` must still end it, and `start` run it again.
test('a container left paused by a SIGKILLed commit: stop, start and rm -f still work', async () => {
  const big = '/big-sparse';
  const script = `dd if=/dev/zero of=${big} bs=1 count=0 seek=256G 2>/dev/null; touch /ready; exec sleep 1000`;
  ok(t(['run', '-d', '--name', 'race-killed', Base, 'sh', '-c', script]));
  started.push('race-killed');
  for (let i = 0; i < 300 && t(['exec', 'race-killed', 'test', '-e', '/ready']).code !== 0; i++) await sleep(50);
  const a = tsbuildAsync(['commit', 'race-killed', 'race/killed:a'], { root });
  const exited = new Promise((r) => a.once('exit', r));
  for (let i = 0; i < 600 && !hasOpen(a.pid!, big); i++) await sleep(50);
  assert.ok(hasOpen(a.pid!, big), 'the commit never began its walk');
  a.kill('SIGKILL');
  await exited;
  ok(t(['stop', '-t', '1', 'race-killed']));
  assert.match(ok(t(['ps', '-a'])).stdout, /Exited \(137\).*race-killed/);
  ok(t(['start', 'race-killed']));
  for (let i = 0; i < 300 && t(['exec', 'race-killed', 'test', '-e', '/ready']).code !== 0; i++) await sleep(50);
  assert.is(t(['exec', 'race-killed', 'true']).code, 0, 'the restarted container does not run');
  // Paused again by a killed commit (the first one's lock is stale now), then removed.
  const b = tsbuildAsync(['commit', 'race-killed', 'race/killed:b'], { root });
  const bExited = new Promise((r) => b.once('exit', r));
  for (let i = 0; i < 600 && !hasOpen(b.pid!, big); i++) await sleep(50);
  assert.ok(hasOpen(b.pid!, big), 'the second commit never began its walk');
  b.kill('SIGKILL');
  await bExited;
  ok(t(['rm', '-f', 'race-killed']));
  assert.not.match(ok(t(['ps', '-a'])).stdout, /race-killed/);
});

test.run();
