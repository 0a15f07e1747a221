// An ordinary user for rootless tests: made with useradd (home in a temp dir), with or without
// subordinate id ranges in /etc/subuid and /etc/subgid, and removed with everything it left.
// The CLI runs as that user from this checkout, reached through a bind mount in a private mount
// namespace: the checkout may sit below a directory the user cannot enter (/root is 0700), and
// nothing of the checkout's own permissions is changed.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repo, tempDir, type Result } from './cli.js';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** A 0755 temp dir of the test: home/, tmp/, the mountpoint of the checkout, contexts. */
  dir: string;
  home: string;
  /** Where the checkout is seen by the user's commands. */
  checkout: string;
}

const SUBID_FILES = ['/etc/subuid', '/etc/subgid'];

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function editSubids(name: string, line: string | undefined): void {
  for (const f of SUBID_FILES) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      /* made below */
    }
    const kept = text.split('\n').filter((l) => l && !l.startsWith(`${name}:`));
    if (line) kept.push(line);
    writeFileSync(f, kept.map((l) => l + '\n').join(''));
  }
}

/** `ranges`: the user's subordinate ids (65536 from `start`), or none at all (the single-mapping case). */
export function createUser(opts: { ranges: boolean; start?: number }): TestUser {
  const name = `tsbrl${process.pid}${Math.floor(Math.random() * 1000)}`.slice(0, 30);
  const dir = tempDir('rootless');
  chmodSync(dir, 0o755);
  const home = join(dir, 'home');
  // useradd may add ranges itself (SUB_UID_COUNT in login.defs): the test sets exactly what it wants.
  run('useradd', ['-m', '-d', home, '-s', '/bin/sh', '-U', name]);
  editSubids(name, opts.ranges ? `${name}:${opts.start ?? 300000}:65536` : undefined);
  const uid = Number(run('id', ['-u', name]).trim());
  const gid = Number(run('id', ['-g', name]).trim());
  const checkout = join(dir, 'checkout');
  mkdirSync(checkout);
  for (const d of ['tmp', 'ctx']) {
    mkdirSync(join(dir, d));
    chownSync(join(dir, d), uid, gid);
  }
  return { name, uid, gid, dir, home, checkout };
}

/** Processes of the user (by uid, listed from /proc), to end them by pid. */
function processesOf(uid: number): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m && Number(m[1]) === uid) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

export function removeUser(u: TestUser | undefined): void {
  if (!u) return;
  for (const pid of processesOf(u.uid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  spawnSync('userdel', [u.name], { stdio: 'ignore' });
  editSubids(u.name, undefined);
  rmSync(u.dir, { recursive: true, force: true });
  rmSync(`/dev/shm/tsbuild-sandbox-${u.uid}`, { recursive: true, force: true });
}

/** Runs `tsbuild ARGS` as the user, from the checkout bound at u.checkout, with a plain login-like environment. */
export function tsbuildAs(
  u: TestUser,
  args: string[],
  opts: { env?: Record<string, string>; input?: string; cwd?: string; cgroup?: string } = {},
): Result {
  return runAs(u, [join(u.checkout, 'packages', 'builder', 'bin', 'tsbuild'), ...args], opts);
}

/**
 * Runs argv as the user (argv[0] a path, usually below u.checkout), as tsbuildAs does; in `opts.cgroup` if given
 * (see helpers/cgroup.ts).
 */
export function runAs(
  u: TestUser,
  argv: string[],
  opts: { env?: Record<string, string>; input?: string; cwd?: string; cgroup?: string } = {},
): Result {
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: u.home,
    USER: u.name,
    LOGNAME: u.name,
    TMPDIR: join(u.dir, 'tmp'),
    CI: 'true',
    ...(process.env.TSBUILD_TEST_RUN ? { TSBUILD_TEST_RUN: process.env.TSBUILD_TEST_RUN } : {}),
    ...opts.env,
  };
  // `cgroup`: root puts the shell in that cgroup (one delegated to the user) before it becomes the user.
  const enter = opts.cgroup ? `echo $$ > '${opts.cgroup}/cgroup.procs' && ` : '';
  const script = `${enter}mount --bind "$1" "$2" && shift 2 && cd "$1" && shift && exec setpriv "$@"`;
  const setpriv = [`--reuid=${u.uid}`, `--regid=${u.gid}`, '--init-groups', '--'];
  const r = spawnSync(
    'unshare',
    [
      '-m',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      script,
      'sh',
      repo,
      u.checkout,
      opts.cwd ?? u.dir,
      ...setpriv,
      ...argv,
    ],
    { env, input: opts.input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  return { code: r.status ?? 128 + 9, stdout: r.stdout, stderr: r.stderr };
}

/** A build context owned by the user, readable by root too (the same files for both builds). */
export function userContext(u: TestUser, name: string, files: Record<string, string>): string {
  const dir = join(u.dir, 'ctx', name);
  mkdirSync(dir);
  for (const [path, content] of Object.entries(files)) writeFileSync(join(dir, path), content);
  run('chown', ['-R', `${u.uid}:${u.gid}`, dir]);
  return dir;
}
