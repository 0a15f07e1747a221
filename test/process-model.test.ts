// What a container's and a RUN step's process sees of itself, as Docker and BuildKit show it: the
// application is PID 1 (an init of ours only with `run --init`), and its own cgroup is mounted
// read-only at /sys/fs/cgroup, so runtimes that size themselves from it see their limits. The
// expected values are what dockerd 20.10 (runc 1.1, BuildKit) printed for the same commands on this
// project's test machine (a cgroup v1 host): `docker run busybox sh -c 'echo $$'` prints 1, with
// --init 7 (docker-init is PID 1); `docker stop -t 2` ends `sleep` as PID 1 with 137 (it ignores
// SIGTERM: no handler), with --init with 143, and a PID 1 with a TERM trap with the trap's status;
// `docker run -m 64m` reads 67108864 from /sys/fs/cgroup/memory/memory.limit_in_bytes and cannot
// write there (Read-only file system).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { Base, cleanup, context, ok, storeWithBase, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const t = (args: string[]) => tsbuild(args, { root });
const started: string[] = [];
const dirs: string[] = [root];
const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function detached(args: string[]): string {
  const id = ok(t(['run', '-d', ...args])).stdout.trim();
  started.push(id);
  return id;
}

function state(id: string): { Status: string; ExitCode: number | null; Pid?: number } {
  return JSON.parse(ok(t(['inspect', id])).stdout).State;
}

/** Waits (bounded only for a failure) until the container's main process exists. */
async function running(id: string): Promise<void> {
  for (const end = Date.now() + 60_000; state(id).Status !== 'running'; await sleep(50))
    if (Date.now() > end) throw new Error(`${id} never ran`);
}

test.after(() => {
  for (const id of started) t(['rm', '-f', id]);
  cleanup(...dirs);
});

// --- 6: PID 1 ------------------------------------------------------------------------------------

test('run: the application is PID 1; with --init it is not, and PID 1 is our init', () => {
  assert.is(ok(t(['run', '--rm', Base, 'sh', '-c', 'echo $$'])).stdout, '1\n');
  const r = ok(t(['run', '--rm', '--init', Base, 'sh', '-c', 'echo $$; tr "\\0" " " < /proc/1/cmdline']));
  const [pid, init] = r.stdout.split('\n');
  assert.ok(Number(pid) > 1, `with --init the application is not PID 1 (got ${pid})`);
  assert.match(init, /init/, 'PID 1 is the init');
});

test('run: exit status, a command that is not found or cannot start, as PID 1 and under --init', () => {
  for (const init of [[], ['--init']]) {
    assert.is(t(['run', '--rm', ...init, Base, 'sh', '-c', 'exit 42']).code, 42);
    // PID 1 gets no signal from inside its namespace that it does not handle, SIGKILL included.
    const killed = t(['run', '--rm', ...init, Base, 'sh', '-c', 'kill -9 $$; echo survived']);
    assert.equal([killed.code, killed.stdout], init.length ? [137, ''] : [0, 'survived\n']);
    const nf = t(['run', '--rm', ...init, Base, 'no-such-command']);
    assert.is(nf.code, 127);
    assert.match(nf.stderr, /no-such-command/);
    // A -w that is a file: docker 20.10 refuses it as it creates the container (125, "Cannot mkdir: ... is not
    // a directory"), before any command could run.
    assert.is(t(['run', '--rm', ...init, '-w', '/etc/passwd', Base, 'true']).code, 125);
  }
});

test('RUN: the step is PID 1, as in BuildKit', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo $$ > /pid\n` });
  dirs.push(ctx);
  ok(t(['build', '-q', '-t', 'pm/pid:1', ctx]));
  assert.is(ok(t(['run', '--rm', 'pm/pid:1', 'cat', '/pid'])).stdout, '1\n');
});

test('exec joins a container whose PID 1 is the application', async () => {
  const id = detached([Base, 'sleep', '300']);
  await running(id);
  const r = ok(t(['exec', id, 'sh', '-c', 'echo $$; tr "\\0" " " < /proc/1/cmdline']));
  const [pid, one] = r.stdout.split('\n');
  assert.ok(Number(pid) > 1);
  assert.is(one, 'sleep 300 ');
});

test('stop: a PID-1 app without a TERM handler is SIGKILLed after the timeout (137) as in docker', async () => {
  const plain = detached([Base, 'sleep', '300']);
  const trapped = detached([Base, 'sh', '-c', 'trap "exit 7" TERM; touch /tmp/trapped; while :; do sleep 0.1; done']);
  const withInit = detached(['--init', Base, 'sleep', '300']);
  for (const id of [plain, trapped, withInit]) await running(id);
  // A SIGTERM that came before the trap was set would be ignored (PID 1 without a handler).
  for (const end = Date.now() + 60_000; t(['exec', trapped, 'test', '-f', '/tmp/trapped']).code !== 0; await sleep(50))
    if (Date.now() > end) throw new Error('the trap was never set');
  ok(t(['stop', '-t', '2', plain]));
  ok(t(['stop', '-t', '60', trapped]));
  ok(t(['stop', '-t', '60', withInit]));
  assert.is(state(plain).ExitCode, 137, 'SIGTERM is ignored by PID 1 without a handler: SIGKILL');
  assert.is(state(trapped).ExitCode, 7, "PID 1's own TERM handler ran");
  assert.is(state(withInit).ExitCode, 143, 'the init forwarded SIGTERM to sleep');
});

test('run --init reaps orphans that the application never waits for', () => {
  // The subshell is orphaned when its parent exits and is re-parented to PID 1 (the init); once the
  // fifo lets it end, only a reaping PID 1 makes it vanish rather than stay a zombie.
  const script = [
    'mkfifo /tmp/f',
    'sh -c "(read x < /tmp/f) & echo \\$! > /tmp/p"',
    'p=$(cat /tmp/p)',
    'grep PPid /proc/$p/status',
    'echo go > /tmp/f',
    'while [ -e /proc/$p ]; do sleep 0.02; done',
    'echo reaped',
  ].join('\n');
  const r = ok(t(['run', '--rm', '--init', Base, 'timeout', '60', 'sh', '-c', script]));
  assert.match(r.stdout, /PPid:\s+1\n/, 'the orphan was re-parented to the init');
  assert.match(r.stdout, /reaped\n$/);
});

// --- 7: the container's own cgroup at /sys/fs/cgroup ------------------------------------------------

const memFile = v2 ? '/sys/fs/cgroup/memory.max' : '/sys/fs/cgroup/memory/memory.limit_in_bytes';
const pidsFile = v2 ? '/sys/fs/cgroup/pids.max' : '/sys/fs/cgroup/pids/pids.max';

test('run -m 64m: the limit is readable at /sys/fs/cgroup, and /proc/self/cgroup shows the namespace root', () => {
  const r = ok(t(['run', '--rm', '-m', '64m', Base, 'sh', '-c', `cat ${memFile}; cat /proc/self/cgroup`]));
  const [limit, ...lines] = r.stdout.trim().split('\n');
  assert.is(limit, '67108864');
  assert.ok(lines.length > 0);
  for (const l of lines) assert.match(l, /:\/$/, `a cgroup namespace rooted at the run's cgroup: ${l}`);
  const m = ok(t(['run', '--rm', '-m', '64m', Base, 'sh', '-c', 'grep " /sys/fs/cgroup" /proc/self/mountinfo']));
  for (const l of m.stdout.trim().split('\n')) assert.match(l, /\sro[,\s]/, `mounted read-only: ${l}`);
});

test('hostile: a container cannot change its own limits, move itself out, or see other cgroups', async () => {
  const other = detached(['-m', '48m', Base, 'sleep', '300']);
  await running(other);
  const script = [
    `echo 1 > ${memFile} && echo WROTE-LIMIT`,
    `echo 0 > /sys/fs/cgroup/${v2 ? '' : 'pids/'}cgroup.procs && echo MOVED`,
    `mkdir /sys/fs/cgroup/${v2 ? '' : 'memory/'}sub && echo MADE-CGROUP`,
    'mount -o remount,rw /sys/fs/cgroup && echo REMOUNTED',
    'touch /sys/fs/cgroup/x && echo WROTE-TMPFS',
    // Only the run's own cgroup: no child cgroup directory (another run's) anywhere below.
    `find /sys/fs/cgroup -mindepth ${v2 ? 1 : 2} -type d`,
    'ls /sys/fs/cgroup/.. >/dev/null',
    `cat ${memFile}`,
  ].join('; ');
  const r = t(['run', '--rm', '-m', '64m', Base, 'sh', '-c', script]);
  assert.not.match(r.stdout, /WROTE-LIMIT|MOVED|MADE-CGROUP|REMOUNTED|WROTE-TMPFS/);
  assert.match(r.stderr, /Read-only file system/);
  assert.is(r.stdout.trim(), '67108864', 'nothing but the unchanged limit (no other cgroup listed)');
});

test('RUN: the step sees its own cgroup read-only, and cannot raise its pids limit', () => {
  const ctx = context({
    Dockerfile: [
      `FROM ${Base}`,
      `RUN cat ${pidsFile} > /pids && cat /proc/self/cgroup > /cg && ! echo 1 2>/err >${pidsFile} && cat /err`,
      '',
    ].join('\n'),
  });
  dirs.push(ctx);
  ok(t(['build', '-q', '-t', 'pm/cg:1', ctx]));
  const r = ok(t(['run', '--rm', 'pm/cg:1', 'sh', '-c', 'cat /pids; cat /err; cat /cg']));
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^(max|\d+)$/, 'the pids limit is readable');
  assert.match(lines[1], /Read-only file system/);
  for (const l of lines.slice(2)) assert.match(l, /:\/$/, l);
});

test.run();
