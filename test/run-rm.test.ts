// `run --rm` from start to end (issue 17): its network starts ahead of the container, its states up
// to the removal are written without fsync, its overlay is volatile, and its network is ended
// without waiting. Killed at any point of that sequence, it must leave what the next `ps -a`, `rm`,
// `prune` and `start` handle, and no network helper behind. Each point is exact: the run stops
// itself there (TSBUILD_TEST_RUN_STOP, a SIGSTOP) and is SIGKILLed while stopped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants as fsc,
  existsSync,
  openSync,
  readFileSync,
  readdirSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { have, skip } from '@tsbuild/testkit';
import { Base, cleanup, ok, storeWithBase, tempDir, tsbuild, tsbuildAsync } from './helpers/cli.js';

const root = storeWithBase();
const t = (args: string[]) => tsbuild(args, { root });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.after(() => cleanup(root));

/** Polls until `probe` says yes; the bound only limits a failure, a pass never waits for a fixed time. */
async function until(what: string, probe: () => boolean, deadlineMs = 60_000): Promise<void> {
  for (const end = Date.now() + deadlineMs; !probe(); await sleep(20))
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}

function stat(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
}
/** Gone: no /proc entry, or a zombie nobody reaped yet. */
const gone = (pid: number) => !/^\d+ \(.*\) [^Z]/.test(stat(pid) ?? '');
const stopped = (pid: number) => /^\d+ \(.*\) T/.test(stat(pid) ?? '');

/** `pid` and every process below it, with its command line. */
function tree(pid: number): { pid: number; cmd: string }[] {
  let kids: number[] = [];
  let cmd = '';
  try {
    cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    for (const task of readdirSync(`/proc/${pid}/task`))
      kids.push(...readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  } catch {
    kids = [];
  }
  return [{ pid, cmd }, ...kids.flatMap(tree)];
}

/** The line `ps -a` shows for the container of that name, or undefined if it lists none. */
function psLine(name: string): string | undefined {
  return ok(t(['ps', '-a']))
    .stdout.split('\n')
    .find((l) => l.trimEnd().endsWith(` ${name}`));
}

function containerId(name: string): string | undefined {
  const dir = join(root, 'containers');
  for (const f of existsSync(dir) ? readdirSync(dir) : []) {
    if (!f.endsWith('.json')) continue;
    const d = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { Id: string; Name: string };
    if (d.Name === name) return d.Id;
  }
  return undefined;
}

/** Starts `run --rm` that stops itself at `point`; returns its pid and the processes it had then. */
async function stoppedAt(point: string, name: string, extra: string[] = []) {
  const script = 'cat /kept 2>/dev/null; echo kept > /kept';
  const c = tsbuildAsync(['run', '--rm', '--name', name, ...extra, Base, 'sh', '-c', script], {
    root,
    env: { TSBUILD_TEST_RUN_STOP: point },
  });
  let stderr = '';
  c.stderr!.on('data', (b: Buffer) => (stderr += String(b)));
  const exited = new Promise((r) => c.once('exit', r));
  await until(`run --rm to stop at "${point}" (stderr: ${stderr})`, () => stopped(c.pid!) || c.exitCode !== null);
  assert.ok(stopped(c.pid!), `run --rm ended instead of stopping at "${point}": ${stderr}`);
  const procs = tree(c.pid!).slice(1);
  c.kill('SIGKILL');
  await exited;
  return procs;
}

// Each point, and what `ps -a` shows of the container once its `run --rm` was killed there: before
// "container created" there is none; "container started" comes before the running state is written.
const points: { point: string; status: RegExp | undefined }[] = [
  { point: 'flags read', status: undefined },
  { point: 'image read', status: undefined },
  { point: 'container created', status: / Created / },
  { point: 'state recorded', status: / Created / },
  { point: 'network up', status: / Created / },
  { point: 'container started', status: / Created / },
  { point: 'container ended', status: / Exited \(unknown\) / },
  { point: 'exit recorded', status: / Exited \(0\) / },
];

for (const [i, p] of points.entries()) {
  test(`run --rm SIGKILLed at "${p.point}": ps -a, prune and rm handle what it left; no helper stays`, async () => {
    if (!have('slirp4netns')) return skip('slirp4netns is not installed (the default network needs it)');
    const name = `rm-kill-${i}`;
    const procs = await stoppedAt(p.point, name);
    // Its network was up (or coming up) at every point: the holder and slirp4netns go with the runner.
    const helpers = procs.filter((x) => /tsbuild-netns|slirp4netns/.test(x.cmd));
    assert.ok(helpers.length > 0, `no network processes at "${p.point}": ${JSON.stringify(procs)}`);
    for (const x of procs) await until(`${x.cmd} (${x.pid}) to end with its runner`, () => gone(x.pid));

    const line = psLine(name);
    if (!p.status) {
      assert.is(line, undefined, 'no container was made yet');
      assert.is(containerId(name), undefined);
      return;
    }
    assert.ok(line, `ps -a does not list ${name}`);
    assert.match(line!, p.status);
    const id = containerId(name)!;
    // prune: the process's own lease expired with it; the container's keeps its image.
    ok(t(['prune', '--grace', '0s']));
    assert.ok(existsSync(join(root, 'leases', `container-${id}.lease`)), 'the container lease is kept');
    ok(t(['rm', name]));
    assert.is(psLine(name), undefined);
    for (const left of [`containers/${id}.json`, `containers/${id}`, `leases/container-${id}.lease`])
      assert.not.ok(existsSync(join(root, left)), `rm left ${left}`);
    // The image is whole: a next run works.
    assert.is(ok(t(['run', '--rm', '--network', 'none', Base, 'echo', 'fine'])).stdout, 'fine\n');
  });
}

test('run --rm killed after its process wrote: start -a runs it again on its kept layer, then removes it', async () => {
  const name = 'rm-restart';
  await stoppedAt('container ended', name, ['--network', 'none']);
  assert.match(psLine(name) ?? '', / Exited \(unknown\) /);
  // Same boot: the volatile overlay's workdir is made anew and the upperdir is used as it was.
  const again = ok(t(['start', '-a', name]));
  assert.is(again.stdout, 'kept\n', 'the file its first run wrote is there');
  const id = containerId(name);
  assert.is(id, undefined, 'the --rm container is removed after its second run');
});

test('run --rm: a volatile overlay refused after a reboot (recorded boot differs) says so and what to do', async () => {
  const name = 'rm-reboot';
  await stoppedAt('container ended', name, ['--network', 'none']);
  const id = containerId(name)!;
  const doc = join(root, 'containers', `${id}.json`);
  const d = JSON.parse(readFileSync(doc, 'utf8')) as { State: { VolatileBoot?: string } };
  assert.ok(d.State.VolatileBoot, 'the boot it ran in is recorded');
  // As if the host had restarted since: the recorded boot is not this one.
  d.State.VolatileBoot = '00000000-0000-0000-0000-000000000000';
  writeFileSync(doc, JSON.stringify(d));
  const r = t(['start', '-a', name]);
  assert.is(r.code, 1, r.stderr); // a failed container command (report.ts)
  assert.match(r.stderr, /ran with --rm and the host has restarted since/);
  assert.match(r.stderr, /tsbuild rm rm-reboot/);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  // Kept, not removed behind the user's back, and a detached start says the same.
  assert.match(psLine(name) ?? '', / Exited \(125\) /);
  const detached = t(['start', name]);
  assert.is(detached.code, 1);
  assert.match(detached.stderr, /the host has restarted since/);
  // Nor is its layer made an image: it may have lost writes.
  const commit = t(['commit', name, 'rm-reboot-commit:1']);
  assert.is(commit.code, 1, commit.stderr);
  assert.match(commit.stderr, /the host has restarted since/);
  assert.not.match(ok(t(['images'])).stdout, /rm-reboot-commit/);
  ok(t(['rm', name]));
  assert.not.ok(existsSync(join(root, 'containers', id)));
});

/** The parent pid of `pid` (/proc/PID/stat's fourth field, after the command in parentheses). */
function ppid(pid: number): number | undefined {
  const m = /\) \S (\d+)/.exec(stat(pid) ?? '');
  return m ? Number(m[1]) : undefined;
}

test("run forks Node once for its container: the container's launcher is the network holder's child", async () => {
  if (!have('slirp4netns')) return skip('slirp4netns is not installed (the default network needs it)');
  // The container waits on a FIFO until the processes have been looked at (its launcher is reaped at its end).
  const dir = tempDir('rm-one-fork');
  execFileSync('mkfifo', [join(dir, 'go')]);
  const script = 'cat /w/go; echo out; exit 5';
  const c = tsbuildAsync(['run', '--rm', '--name', 'rm-one-fork', '-v', `${dir}:/w`, Base, 'sh', '-c', script], {
    root,
    env: { TSBUILD_TEST_RUN_STOP: 'container started' },
  });
  let stdout = '';
  c.stdout!.on('data', (b: Buffer) => (stdout += String(b)));
  const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
  await until('run --rm to stop once the container started', () => stopped(c.pid!) || c.exitCode !== null);
  // Looked at while it is stopped (the container waits for nothing, it ends once the run goes on).
  const procs = tree(c.pid!).map((x) => ({ ...x, ppid: ppid(x.pid) }));
  // Opened without waiting (a container that never reads must fail the test, not hang it).
  await until('the container to open its FIFO', () => {
    try {
      const fd = openSync(join(dir, 'go'), fsc.O_WRONLY | fsc.O_NONBLOCK);
      writeSync(fd, 'go\n');
      closeSync(fd);
      return true;
    } catch {
      return false;
    }
  });
  c.kill('SIGCONT');
  // Ended before anything is asserted: a failure must not leave it running into the next test.
  const code = await exited;
  // The launcher, not its PID 1 (a fork of it, with its name until the command's exec).
  const isInit = (x?: { cmd: string }) => !!x?.cmd.startsWith('tsbuild-init');
  const launchers = procs.filter((x) => isInit(x) && !isInit(procs.find((p) => p.pid === x.ppid)));
  assert.is(launchers.length, 1, `one container launcher: ${JSON.stringify(procs)}`);
  const parent = procs.find((x) => x.pid === launchers[0].ppid);
  assert.ok(parent?.cmd.startsWith('tsbuild-netns'), `its parent is the holder: ${JSON.stringify(procs)}`);
  assert.is(parent!.ppid, c.pid, 'the holder is the child of the CLI');
  assert.is(code, 5);
  assert.is(stdout, 'go\nout\n');
  assert.is(psLine('rm-one-fork'), undefined);
  cleanup(dir);
});

test('run --rm to its end: exit status, all of its output; no container, no network helper left', async () => {
  if (!have('slirp4netns')) return skip('slirp4netns is not installed (the default network needs it)');
  const before = readdirSync(join(root, 'containers')).length;
  const script = 'seq 1 20000; echo err >&2; exit 7';
  const c = tsbuildAsync(['run', '--rm', '--name', 'rm-whole', Base, 'sh', '-c', script], {
    root,
    env: { TSBUILD_TEST_RUN_STOP: 'exit recorded' },
  });
  let stdout = '';
  let stderr = '';
  c.stdout!.on('data', (b: Buffer) => (stdout += String(b)));
  c.stderr!.on('data', (b: Buffer) => (stderr += String(b)));
  const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
  await until('run --rm to stop once the exit is recorded', () => stopped(c.pid!) || c.exitCode !== null);
  const helpers = tree(c.pid!).filter((x) => /tsbuild-netns|slirp4netns/.test(x.cmd));
  assert.ok(helpers.length > 0, 'its network is still up before the removal');
  c.kill('SIGCONT');
  assert.is(await exited, 7);
  assert.is(stdout.split('\n').length, 20001);
  assert.ok(stdout.endsWith('20000\n'));
  assert.is(stderr, 'err\n');
  assert.is(psLine('rm-whole'), undefined);
  assert.is(readdirSync(join(root, 'containers')).length, before);
  // Ended, not waited for: they go on their own once the run has returned.
  for (const x of helpers) await until(`${x.cmd} (${x.pid}) to end`, () => gone(x.pid));
});

test.run();
