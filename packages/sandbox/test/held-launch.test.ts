// A container's launcher forked by its network's holder (NetworkOptions.launcherStdio, launcher.c
// launch_container): what the run reports when the holder cannot fork it, that the container does not
// depend on the network helper once it runs (as it does not when tsbuild forks the launcher itself), that
// nothing of the holder's reaches it, and that a launcher whose spec was cut short (its writer killed) refuses it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { have, skip } from '@tsbuild/testkit';
import { startNetwork, type PrivateNetwork } from '../src/index.js';
import { freshRoot, sh, stateDir, tmp } from './helpers.js';
import { encodeSpec } from '../src/spec.js';
import { launcherPath } from '../src/launcher.js';

const ignored = { stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' } as const;

/** The holder's children (slirp4netns, and the container's launcher once forked). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** Polls `cond` (a deterministic signal: a file, a process) and fails after `what` was awaited long enough. */
async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Settles with `p`, or fails once it has hung long enough to be a hang (not a timing assertion). */
function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung: ${what}`)), 30000);
  });
  return Promise.race([p, hung]).finally(() => clearTimeout(timer));
}

test('a holder that cannot fork the launcher: the run fails with the reason, it does not hang', async () => {
  if (!have('slirp4netns')) return skip('slirp4netns not installed');
  if (!have('prlimit')) return skip('prlimit (util-linux) not installed');
  const net: PrivateNetwork = await startNetwork({ stateDir, launcherStdio: ignored });
  try {
    // Every fd number the holder may use is taken: its pipe2() for the launcher's spec fails (EMFILE).
    const highest = Math.max(...readdirSync(`/proc/${net.pid}/fd`).map(Number));
    execFileSync('prlimit', [`--pid=${net.pid}`, `--nofile=${Math.min(highest, 5)}`]);
    const run = sh('echo never', {
      network: 'private',
      netns: net,
      newSession: true,
      stdout: undefined,
      stderr: undefined,
    });
    const e = await bounded(
      run.then(
        () => undefined,
        (x: Error) => x,
      ),
      'the run of a launcher the holder could not fork',
    );
    assert.ok(e, 'the run failed');
    assert.match(e!.message, /Too many open files/);
  } finally {
    await net.close();
  }
});

test('the network helper ending while the container runs: the container runs on to its end, as before', async () => {
  if (!have('slirp4netns')) return skip('slirp4netns not installed');
  const w = join(tmp, 'helper-ends');
  mkdirSync(w);
  const net = await startNetwork({ stateDir, launcherStdio: ignored });
  try {
    const slirp = childrenOf(net.pid).filter((p) => cmdline(p).includes('slirp4netns'));
    assert.is(slirp.length, 1, 'one slirp4netns');
    const script = 'touch /w/started; while [ ! -e /w/go ]; do sleep 0.05; done; echo ran > /w/out; exit 3';
    const r = sh(script, {
      network: 'private',
      netns: net,
      newSession: true,
      stdout: undefined,
      stderr: undefined,
      mounts: [{ type: 'bind', source: w, target: '/w' }],
    });
    r.catch(() => {});
    await until('the container to start', () => existsSync(join(w, 'started')));
    // The launcher is the holder's child: this is the held path, not a launch by this process.
    assert.ok(
      childrenOf(net.pid).some((p) => cmdline(p).startsWith('tsbuild-init')),
      'the holder forked the launcher',
    );
    process.kill(slirp[0], 'SIGKILL');
    await until(
      'slirp4netns to be reaped',
      () => !childrenOf(net.pid).includes(slirp[0]) || !existsSync(`/proc/${net.pid}`),
    );
    writeFileSync(join(w, 'go'), '');
    const exit = await bounded(r, 'the container');
    assert.is(exit.code, 3);
    assert.is(readFileSync(join(w, 'out'), 'utf8'), 'ran\n');
  } finally {
    await net.close();
  }
});

test("a spec too large for the launcher: the launcher's own error, as when tsbuild forks it", async () => {
  if (!have('slirp4netns')) return skip('slirp4netns not installed');
  const net = await startNetwork({ stateDir, launcherStdio: ignored });
  try {
    // Above the launcher's 64 MiB bound (launcher.c SPEC_MAX).
    const env = ['PATH=/bin', `BIG=${'x'.repeat(65 << 20)}`];
    const e = await bounded(
      sh('true', { network: 'private', netns: net, newSession: true, stdout: undefined, stderr: undefined, env }).then(
        () => undefined,
        (x: Error) => x,
      ),
      'the run of a spec too large',
    );
    assert.ok(e, 'the run failed');
    assert.match(e!.message, /spec too large/, e!.message);
  } finally {
    await net.close();
  }
});

test("no descriptor of the holder (slirp4netns's, the container's status pipe) reaches the container", async () => {
  if (!have('slirp4netns')) return skip('slirp4netns not installed');
  const w = join(tmp, 'held-fds');
  mkdirSync(w);
  const net = await startNetwork({ stateDir, launcherStdio: ignored });
  try {
    const r = await bounded(
      sh('ls -l /proc/self/fd/ /proc/1/fd/ > /w/fds 2>&1', {
        network: 'private',
        netns: net,
        newSession: true,
        stdout: undefined,
        stderr: undefined,
        mounts: [{ type: 'bind', source: w, target: '/w' }],
      }),
      'the container',
    );
    assert.is(r.code, 0);
    const fds = readFileSync(join(w, 'fds'), 'utf8');
    // 0-2, and ls's own directory (/proc/...): nothing else, at any number.
    const open = [...fds.matchAll(/ (\d+) -> (\S*)/g)].filter(([, n, to]) => Number(n) > 2 && !to.startsWith('/proc/'));
    assert.equal(open, [], fds);
    assert.match(fds, / 0 -> \/dev\/null/);
  } finally {
    await net.close();
  }
});

/**
 * A spec cut short: what a launcher reads when its writer (the network holder, or tsbuild) is killed mid-write,
 * before the launcher's parent-death signal is armed. Its head alone is a runnable spec whose missing tail
 * held the network namespace to join and the capabilities to drop: it must be refused, not run.
 */
test('a spec cut short is refused: the launcher reports it and starts nothing', () => {
  const root = freshRoot();
  const rootdir = join(tmp, 'cut-root');
  mkdirSync(rootdir);
  const files = join(tmp, 'cut-files');
  mkdirSync(files);
  for (const f of ['hosts', 'resolv.conf', 'hostname']) writeFileSync(join(files, f), '');
  const spec = encodeSpec({
    lowerdirs: root.lowerdirs,
    upperdir: root.upperdir,
    workdir: root.workdir,
    rootdir,
    argv: ['true'],
    env: ['PATH=/bin'],
    cwd: '/',
    uid: 0,
    gid: 0,
    groups: [],
    hostname: 'cut',
    network: 'private',
    hostsFile: join(files, 'hosts'),
    resolvFile: join(files, 'resolv.conf'),
    hostnameFile: join(files, 'hostname'),
    mounts: [],
    cgroupProcs: [],
    netnsPid: process.pid,
    noNetRaw: true,
  });
  const cut = spec.subarray(0, spec.indexOf('netns='));
  const file = join(tmp, 'cut-spec');
  writeFileSync(file, cut);
  const fd = openSync(file, 'r');
  try {
    const r = spawnSync(launcherPath(), [], { stdio: ['ignore', 'ignore', 'pipe', fd, 'pipe'], timeout: 20000 });
    const status = String(r.output[4]);
    assert.not.match(status, /^pid \d+$/m, `the launcher started the run: ${status}`);
    assert.match(status, /^setup .*truncated/m, status);
    assert.is(r.status, 125, `${r.status} ${r.signal} ${String(r.stderr)}`);
  } finally {
    closeSync(fd);
  }
});

test.run();
