// Containers through the CLI: state, binds and volumes, exec, commit, limits, networks, and state
// that stays right when the processes watching a container die.
// test-runner: long
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync, lstatSync, readlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { defaultStateDir } from '@tsbuild/sandbox';
import { runCgroupsOf, throttledCounters } from '@tsbuild/testkit';
import { Base, cleanup, context, ok, repo, storeWithBase, tempDir, tsbuild, tsbuildAsync } from './helpers/cli.js';

const repoRoot = () => repo;

const root = storeWithBase();
const t = (args: string[]) => tsbuild(args, { root });
const started: string[] = [];
const dirs: string[] = [root];

function detached(args: string[]): string {
  const r = ok(t(['run', '-d', ...args]));
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  started.push(id);
  return id;
}

function inspect(c: string): {
  State: { Status: string; ExitCode: number | null; Pid?: number; Runner?: number; OOMKilled?: boolean };
} {
  return JSON.parse(ok(t(['inspect', c])).stdout);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns a value. The deadline bounds only a failure: a pass waits for
 * the state it needs, however slow the machine, never for a fixed time.
 */
async function until<T>(what: string | (() => string), probe: () => T | undefined, deadlineMs = 60_000): Promise<T> {
  for (const end = Date.now() + deadlineMs; ; await sleep(50)) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
  }
}

/** A process is gone once /proc has no entry for it, or it is a zombie nobody reaped yet. */
function gone(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

const img = 'ctr/vol:1';
/** An image whose WorkingDir is /etc. */
const withWorkdir = 'ctr/wd:1';
test.before(() => {
  const ctx = context({
    Dockerfile:
      `FROM ${Base}\nRUN mkdir -p /data /etc/app && echo seed > /data/s && echo conf > /etc/app/c\n` +
      `VOLUME /data\nCMD ["sh"]\n`,
  });
  dirs.push(ctx);
  ok(t(['build', '-q', '-t', img, ctx]));
  const wd = context({ Dockerfile: `FROM ${Base}\nWORKDIR /etc\n` });
  dirs.push(wd);
  ok(t(['build', '-q', '-t', withWorkdir, wd]));
});

test.after(() => {
  for (const id of started) t(['rm', '-f', '-v', id]);
  cleanup(...dirs);
});

test('run: exit status, -e, --name, the container shows in ps -a with its code', () => {
  const r = t(['run', '--name', 'basic', '-e', 'FOO=bar', '-w', '/tmp', Base, 'sh', '-c', 'echo $FOO; pwd; exit 3']);
  started.push('basic');
  assert.is(r.code, 3, r.stderr);
  assert.is(r.stdout, 'bar\n/tmp\n');
  const ps = ok(t(['ps', '-a'])).stdout;
  assert.match(ps, /Exited \(3\).*basic/);
  assert.not.match(ok(t(['ps'])).stdout, /basic/);
  assert.is(t(['run', '--rm', Base, 'no-such-command']).code, 127);
  assert.is(t(['run', '--rm', 'no/such:image']).code, 125);
});

// A command that cannot be started, as docker 20.10 says it: run -d prints the id and then the error, exits 127
// (not found) or 126 (not executable), and leaves the container Created with that exit code (removed with --rm);
// a foreground run the same without the id. With --init the init starts, and it is its command that fails.
const startFailures: {
  name: string;
  args: string[];
  code: number;
  stderr?: RegExp;
  id: boolean;
  after: RegExp | 'removed';
}[] = [
  {
    name: 'run -d, a path that does not exist',
    args: ['-d', Base, '/nonexistent'],
    code: 127,
    stderr: /^ERROR: exec: "\/nonexistent": stat \/nonexistent: no such file or directory$/m,
    id: true,
    after: / Created /,
  },
  {
    name: 'run -d, a command not in PATH',
    args: ['-d', Base, 'no-such-command'],
    code: 127,
    stderr: /^ERROR: exec: "no-such-command": executable file not found in \$PATH$/m,
    id: true,
    after: / Created /,
  },
  {
    name: 'run -d, a file that is not executable',
    args: ['-d', Base, '/etc/passwd'],
    code: 126,
    stderr: /^ERROR: exec: "\/etc\/passwd": permission denied$/m,
    id: true,
    after: / Created /,
  },
  {
    name: 'run -d --rm: removed',
    args: ['-d', '--rm', Base, '/nonexistent'],
    code: 127,
    stderr: /^ERROR: exec: "\/nonexistent": stat/m,
    id: true,
    after: 'removed',
  },
  {
    name: 'run in the foreground',
    args: [Base, '/nonexistent'],
    code: 127,
    stderr: /^ERROR: exec: "\/nonexistent": stat/m,
    id: false,
    after: / Created /,
  },
  {
    name: 'run -d --init: the init starts',
    args: ['-d', '--init', Base, '/nonexistent'],
    code: 0,
    id: true,
    after: / Exited \(127\) /,
  },
];
for (const [i, c] of startFailures.entries())
  test(`start failure: ${c.name}`, async () => {
    const name = `startfail${i}`;
    const r = t(['run', '--name', name, ...c.args]);
    started.push(name);
    assert.is(r.code, c.code, r.stderr);
    assert.match(r.stdout, c.id ? /^[0-9a-f]{64}\n$/ : /^$/);
    if (c.stderr) assert.match(r.stderr, c.stderr);
    const line = () =>
      ok(t(['ps', '-a']))
        .stdout.split('\n')
        .find((l) => l.endsWith(` ${name}`));
    if (c.after === 'removed') assert.is(line(), undefined);
    else {
      const after = c.after;
      // With --init the exit is recorded by its supervisor once the init has ended.
      await until(
        () => `${name} to show ${after} (ps -a: ${line()})`,
        () => (after.test(line() ?? '') ? true : undefined),
      );
      assert.is(inspect(name).State.ExitCode, c.code || 127);
    }
  });

// -w as docker takes it: a directory the image lacks is made (root's, 0755, in the container's own
// layer) before the command starts; one the user cannot search is still entered, as runc enters it
// before it drops root's rights.
const owner = 'echo "$(pwd) $(stat -c "%U %a" .)"';
const workdirs: { name: string; args: string[]; image?: string; script?: string; stdout: string }[] = [
  { name: 'a missing directory is made', args: ['-w', '/newdir/sub'], stdout: '/newdir/sub root 755\n' },
  { name: 'made for a non-root user too', args: ['-u', '1000', '-w', '/made'], stdout: '/made root 755\n' },
  {
    name: "root's 0700 home, as a non-root user",
    args: ['-u', '1000', '-w', '/root'],
    script: 'pwd',
    stdout: '/root\n',
  },
  // Empty is not given: the image's own WorkingDir, as docker takes `-w ""`.
  { name: "empty: the image's own", args: ['-w', ''], image: withWorkdir, script: 'pwd', stdout: '/etc\n' },
];
for (const c of workdirs)
  test(`run -w: ${c.name}`, () => {
    const r = t(['run', '--rm', ...c.args, c.image ?? Base, 'sh', '-c', c.script ?? owner]);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, c.stdout);
  });

test('bind mounts: visible and writable, and not writable with :ro', () => {
  const host = tempDir('bind');
  dirs.push(host);
  writeFileSync(join(host, 'in'), 'from host\n');
  const r = ok(t(['run', '--rm', '-v', `${host}:/mnt`, Base, 'sh', '-c', 'cat /mnt/in && echo from ctr > /mnt/out']));
  assert.is(r.stdout, 'from host\n');
  assert.is(readFileSync(join(host, 'out'), 'utf8'), 'from ctr\n');
  const ro = t(['run', '--rm', '-v', `${host}:/mnt:ro`, Base, 'sh', '-c', 'cat /mnt/in && echo x > /mnt/out2']);
  assert.is.not(ro.code, 0);
  assert.match(ro.stdout, /from host/);
  assert.not.ok(existsSync(join(host, 'out2')));
});

test('anonymous volume: seeded from the image, kept across a restart, removed with rm -v', () => {
  const r = ok(t(['run', '--name', 'vol1', img, 'sh', '-c', 'cat /data/s; echo run >> /data/log; cat /data/log']));
  started.push('vol1');
  assert.is(r.stdout, 'seed\nrun\n');
  const again = ok(t(['start', '-a', 'vol1']));
  assert.is(again.stdout, 'seed\nrun\nrun\n');
  const vols = ok(t(['volume', 'ls', '-q']))
    .stdout.trim()
    .split('\n');
  const doc = JSON.parse(ok(t(['inspect', 'vol1'])).stdout);
  const name = doc.Config.mounts[0].name as string;
  assert.ok(vols.includes(name));
  ok(t(['rm', '-v', 'vol1']));
  assert.not.ok(ok(t(['volume', 'ls', '-q'])).stdout.includes(name));
});

test('named volume: shared between runs, seeded once, volume rm', () => {
  ok(t(['run', '--rm', '-v', 'named1:/data', img, 'sh', '-c', 'echo one >> /data/n']));
  const r = ok(t(['run', '--rm', '-v', 'named1:/data', Base, 'sh', '-c', 'cat /data/s /data/n']));
  assert.is(r.stdout, 'seed\none\n');
  assert.match(ok(t(['volume', 'ls'])).stdout, /named1/);
  ok(t(['volume', 'rm', 'named1']));
  assert.not.match(ok(t(['volume', 'ls'])).stdout, /named1/);
});

test('-d, logs, exec sees the same processes, hostname and files; stop', async () => {
  // --init: PID 1 is the init, which forwards `stop`'s SIGTERM to sleep (143).
  const id = detached([
    '--init',
    '--name',
    'ex1',
    '--hostname',
    'box1',
    Base,
    'sh',
    '-c',
    'echo hello; echo hi > /tmp/m; exec sleep 300',
  ]);
  assert.match(ok(t(['ps'])).stdout, /Up .*ex1/);
  // Until its command has written /tmp/m and exec'd sleep (no fixed number of tries).
  let last = '';
  const out = await until(
    () => `ex1 to settle (last exec: ${last})`,
    () => {
      const r = t(['exec', 'ex1', 'sh', '-c', 'cat /tmp/m && hostname && ps -o pid,args']);
      last = r.stdout + r.stderr;
      return r.code === 0 && /\n\s*2 sleep 300\n/.test(r.stdout) ? r.stdout : undefined;
    },
  );
  assert.match(out, /^hi\nbox1\n/);
  assert.match(out, /\n\s*2 sleep 300\n/);
  assert.is(t(['exec', 'ex1', 'sh', '-c', 'exit 9']).code, 9);
  assert.match(ok(t(['logs', 'ex1'])).stdout, /^hello\n/);
  ok(t(['stop', '-t', '5', id.slice(0, 12)]));
  assert.is(inspect('ex1').State.Status, 'exited');
  assert.is(inspect('ex1').State.ExitCode, 143);
  assert.is(t(['exec', 'ex1', 'true']).code, 1);
});

// run as docker 20.10 fails when -w is a file, or -u a user the image lacks: 125 both, but docker refuses such a -w
// when it creates the container (none is left, -d prints no id), while the user is looked up when it starts (the
// container stays Created, -d has printed its id; --rm removes it).
const runFailures: { args: string[]; stderr: RegExp; left?: 'created'; id?: true }[] = [
  { args: ['-w', '/etc/passwd'], stderr: /^ERROR: Cannot mkdir: \/etc\/passwd is not a directory$/m },
  { args: ['-d', '-w', '/etc/passwd'], stderr: /^ERROR: Cannot mkdir: \/etc\/passwd is not a directory$/m },
  { args: ['--rm', '-w', '/etc/passwd'], stderr: /^ERROR: Cannot mkdir: \/etc\/passwd is not a directory$/m },
  {
    args: ['-w', '/etc/passwd/x'],
    stderr: /^ERROR: Cannot mkdir: \/etc\/passwd\/x: \/etc\/passwd is not a directory$/m,
  },
  {
    args: ['-u', 'nosuch'],
    stderr: /^ERROR: unable to find user nosuch: no matching entries in passwd file$/m,
    left: 'created',
  },
  {
    args: ['-d', '-u', 'nosuch'],
    stderr: /^ERROR: unable to find user nosuch: no matching entries in passwd file$/m,
    left: 'created',
    id: true,
  },
  {
    args: ['--rm', '-u', 'nosuch'],
    stderr: /^ERROR: unable to find user nosuch: no matching entries in passwd file$/m,
  },
];
test('run -w FILE, -u NOSUCH: exit 125, the message, and the container left as docker leaves it', () => {
  for (const [i, c] of runFailures.entries()) {
    const name = `runfail-${i}`;
    const r = t(['run', '--name', name, ...c.args, Base, 'true']);
    const what = c.args.join(' ');
    assert.is(r.code, 125, `${what}: ${r.stderr}`);
    assert.match(r.stderr, c.stderr, what);
    const doc = t(['inspect', '--type', 'container', name]);
    if (!c.left) {
      assert.is(doc.code, 1, `${what}: no container left`);
      assert.is(r.stdout, '', what);
      continue;
    }
    started.push(name);
    const d = JSON.parse(ok(doc).stdout) as { Id: string; State: { Status: string } };
    assert.is(d.State.Status, c.left, what);
    assert.is(r.stdout, c.id ? `${d.Id}\n` : '', what);
    // Its start fails the same way each time (docker start: 1), and leaves it Created.
    const again = t(['start', name]);
    assert.is(again.code, 1, `${what}: start: ${again.stderr}`);
    assert.match(again.stderr, /unable to find user nosuch/, what);
    assert.is(inspect(name).State.Status, c.left, what);
  }
});

// exec as docker 20.10 exits: 1 when the daemon refuses (no such container, not running), 126 for a process that
// cannot be started in the container, whatever the reason (its user, its file, its PATH).
const execFailures: { name: string; args: (ctr: string) => string[]; code: number; stderr: RegExp }[] = [
  {
    name: 'no such container',
    args: () => ['no-such-ctr', 'true'],
    code: 1,
    stderr: /^ERROR: No such container: no-such-ctr$/m,
  },
  {
    name: 'a path that does not exist',
    args: (c) => [c, '/nonexistent'],
    code: 126,
    stderr: /^ERROR: exec: "\/nonexistent": stat \/nonexistent: no such file or directory$/m,
  },
  {
    name: 'a command not in PATH',
    args: (c) => [c, 'no-such-command'],
    code: 126,
    stderr: /^ERROR: exec: "no-such-command": executable file not found in \$PATH$/m,
  },
  {
    name: 'a file that is not executable',
    args: (c) => [c, '/etc/passwd'],
    code: 126,
    stderr: /^ERROR: exec: "\/etc\/passwd": permission denied$/m,
  },
  {
    name: 'a directory',
    args: (c) => [c, '/etc'],
    code: 126,
    stderr: /^ERROR: exec: "\/etc": permission denied$/m,
  },
  {
    name: 'a user the container does not have',
    args: (c) => ['-u', 'nosuch', c, 'true'],
    code: 126,
    stderr: /^ERROR: unable to find user nosuch: no matching entries in passwd file$/m,
  },
  {
    name: 'a container that is not running',
    args: () => ['execfail-stopped', 'true'],
    code: 1,
    stderr: /^ERROR: container execfail-stopped is not running$/m,
  },
];
test('exec failures: exit status and message as docker exec', () => {
  const id = detached([Base, 'sleep', '300']);
  ok(t(['run', '--name', 'execfail-stopped', Base, 'true']));
  started.push('execfail-stopped');
  for (const c of execFailures) {
    const r = t(['exec', ...c.args(id)]);
    assert.is(r.code, c.code, `${c.name}: ${r.stderr}`);
    assert.match(r.stderr, c.stderr, c.name);
  }
  ok(t(['rm', '-f', id]));
});

// exec -d as docker 20.10's: the command starts in the container and exec returns at once (it waits here for a
// file only the next exec makes, so an exec that waited for it would never return), exit 0, nothing printed;
// its output goes nowhere (not to the container's log).
test('exec -d: the command runs in the container, exec returns once it has started', async () => {
  const id = detached([Base, 'sleep', '300']);
  const script = 'echo out; echo err >&2; until [ -e /go ]; do sleep 0.05; done; id -u > /f';
  const r = t(['exec', '-d', id, 'sh', '-c', script]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout + r.stderr, '');
  // -u and -w as a foreground exec takes them; -t and -i are accepted (there is nothing to attach to).
  ok(t(['exec', '-d', '-t', '-i', '-u', '1000', '-w', '/tmp', id, 'sh', '-c', 'touch here']));
  ok(t(['exec', id, 'touch', '/go']));
  const f = await until('/f', () => {
    const c = t(['exec', id, 'cat', '/f']);
    return c.code === 0 ? c.stdout : undefined;
  });
  assert.is(f, '0\n');
  const owner = await until('/tmp/here', () => {
    const c = t(['exec', id, 'stat', '-c', '%u', '/tmp/here']);
    return c.code === 0 ? c.stdout : undefined;
  });
  assert.is(owner, '1000\n');
  const logs = ok(t(['logs', id]));
  assert.is(logs.stdout + logs.stderr, '');
  ok(t(['rm', '-f', id]));
});

// docker 20.10's exec -d exits 1 for every failure, the daemon's and the process's alike (exec without -d: 126).
const detachedExecFailures: { name: string; args: (ctr: string) => string[]; stderr: RegExp }[] = [
  {
    name: 'no such container',
    args: () => ['no-such-ctr', 'true'],
    stderr: /^ERROR: No such container: no-such-ctr$/m,
  },
  {
    name: 'a command not in PATH',
    args: (c) => [c, 'no-such-command'],
    stderr: /^ERROR: exec: "no-such-command": executable file not found in \$PATH$/m,
  },
  {
    name: 'a file that is not executable',
    args: (c) => [c, '/etc/passwd'],
    stderr: /^ERROR: exec: "\/etc\/passwd": permission denied$/m,
  },
  {
    name: 'a user the container does not have',
    args: (c) => ['-u', 'nosuch', c, 'true'],
    stderr: /^ERROR: unable to find user nosuch: no matching entries in passwd file$/m,
  },
  { name: 'a working directory it does not have', args: (c) => ['-w', '/nonexistent', c, 'true'], stderr: /ERROR: / },
  {
    name: 'a container that is not running',
    args: () => ['execd-stopped', 'true'],
    stderr: /^ERROR: container execd-stopped is not running$/m,
  },
];
test('exec -d failures: exit 1 and the reason, as docker exec -d', () => {
  const id = detached([Base, 'sleep', '300']);
  ok(t(['run', '--name', 'execd-stopped', Base, 'true']));
  started.push('execd-stopped');
  for (const c of detachedExecFailures) {
    const r = t(['exec', '-d', ...c.args(id)]);
    assert.is(r.code, 1, `${c.name}: ${r.stderr}`);
    assert.match(r.stderr, c.stderr, c.name);
    assert.is(r.stdout, '', c.name);
  }
  ok(t(['rm', '-f', id]));
});

// logs --tail as docker's: the last N lines, a last one without its newline counted; all, or a negative number,
// for every line. (Docker takes any other word as all; tsbuild says the flag is wrong.)
const tails: { args: string[]; code?: number; stdout: string; stderr?: RegExp }[] = [
  { args: ['--tail', '2'], stdout: 'd\ne' },
  { args: ['-n', '2'], stdout: 'd\ne' },
  { args: ['--tail=1'], stdout: 'e' },
  { args: ['--tail', '+2'], stdout: 'd\ne' },
  { args: ['--tail', '0'], stdout: '' },
  { args: ['--tail', '10'], stdout: 'a\nb\nc\n\nd\ne' },
  { args: ['--tail', 'all'], stdout: 'a\nb\nc\n\nd\ne' },
  { args: ['--tail', '-1'], stdout: 'a\nb\nc\n\nd\ne' },
  { args: ['--tail', 'x'], code: 2, stdout: '', stderr: /^ERROR: --tail: "x" is not a number of lines or all$/m },
];
test('logs --tail', async () => {
  const id = detached([Base, 'printf', 'a\nb\nc\n\nd\ne']);
  await until('its output', () => (ok(t(['logs', id])).stdout === 'a\nb\nc\n\nd\ne' ? true : undefined));
  for (const c of tails) {
    const r = t(['logs', ...c.args, id]);
    assert.is(r.code, c.code ?? 0, `${c.args.join(' ')}: ${r.stderr}`);
    assert.is(r.stdout, c.stdout, c.args.join(' '));
    if (c.stderr) assert.match(r.stderr, c.stderr);
  }
  const ends = ok(t(['run', '-d', Base, 'printf', '1\n2\n'])).stdout.trim();
  started.push(ends);
  await until('its output', () => (ok(t(['logs', ends])).stdout === '1\n2\n' ? true : undefined));
  assert.is(ok(t(['logs', '--tail', '1', ends])).stdout, '2\n');
});

test('logs -f --tail N: the last N lines, then what follows until it exits', async () => {
  const id = detached([Base, 'sh', '-c', 'printf "1\n2\n3\n"; until [ -e /go ]; do sleep 0.05; done; echo 4']);
  await until('its first lines', () => (ok(t(['logs', id])).stdout === '1\n2\n3\n' ? true : undefined));
  const child = tsbuildAsync(['logs', '-f', '--tail', '1', id], { root });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.resume();
  await until(
    () => `logs -f to print the last line (so far: ${JSON.stringify(out)})`,
    () => (out.endsWith('\n') ? true : undefined),
  );
  assert.is(out, '3\n');
  ok(t(['exec', id, 'touch', '/go']));
  const code = await new Promise((r) => child.on('close', r));
  assert.is(code, 0);
  assert.is(out, '3\n4\n');
});

// The working directory is entered as root first (as runc does), but never through a /proc magic link: root could
// follow /proc/1/cwd of the non-dumpable init, which the user cannot.
test('exec -w through a /proc magic link is refused, as the user would be', () => {
  const id = detached(['--init', Base, 'sleep', '300']);
  const r = t(['exec', '-u', '1000', '-w', '/proc/1/cwd', id, 'pwd']);
  assert.is.not(r.code, 0, r.stdout);
  assert.is(r.stdout, '');
  ok(t(['rm', '-f', id]));
});

function tree(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const n of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${n}` : n;
    if (['dev', 'proc', 'sys'].includes(r)) continue;
    const st = lstatSync(join(dir, r));
    if (st.isDirectory()) {
      out.push(`${r}/`);
      out.push(...tree(dir, r));
    } else if (st.isSymbolicLink()) out.push(`${r} -> ${readlinkSync(join(dir, r))}`);
    else
      out.push(
        `${r} ${createHash('md5')
          .update(readFileSync(join(dir, r)))
          .digest('hex')}`,
      );
  }
  return out;
}

test('commit: the new image is exactly the container view, without the hosts files', () => {
  const script = [
    'echo new > /new',
    'echo changed >> /etc/app/c',
    'rm /data/s',
    'rm -r /etc/app && mkdir /etc/app && echo again > /etc/app/d',
    'rm /etc/passwd',
    'echo x >> /etc/hosts',
    'mkdir -p /d/e && echo f > /d/e/f',
    // The container's own view, as paths and md5 sums, in the same format as tree() below.
    'cd / && find . -xdev \\( -path ./dev -o -path ./proc -o -path ./sys \\) -prune -o -print | sed "s|^\\./||" | ' +
      'grep -v "^\\.$" | sort | while read p; do if [ -L "$p" ]; then echo "$p -> $(readlink "$p")"; elif [ -d ' +
      '"$p" ]; then echo "$p/"; else echo "$p $(md5sum < "$p" | cut -d" " -f1)"; fi; done',
  ].join(' && ');
  const r = ok(t(['run', '--name', 'com1', '-v', '/data', img, 'sh', '-c', script]));
  started.push('com1');
  ok(t(['commit', '-c', 'CMD ["cat", "/new"]', '-c', 'ENV COMMITTED=1', 'com1', 'ctr/committed:1']));
  assert.is(ok(t(['run', '--rm', 'ctr/committed:1'])).stdout, 'new\n');
  assert.is(ok(t(['run', '--rm', 'ctr/committed:1', 'sh', '-c', 'echo $COMMITTED'])).stdout, '1\n');
  const out = tempDir('flat');
  dirs.push(out);
  const ctx = context({ Dockerfile: 'FROM ctr/committed:1\n' });
  dirs.push(ctx);
  ok(t(['build', '-q', '-o', `type=local,dest=${out}`, ctx]));
  const all = tree(out);
  // /data is a volume in the container: what it did there is not committed, the image keeps its own.
  assert.ok(all.includes(`data/s ${createHash('md5').update('seed\n').digest('hex')}`));
  const image = all.filter((l) => !/^data\/./.test(l));
  // What the container saw, minus what belongs to the container only.
  const seen = r.stdout
    .trim()
    .split('\n')
    .filter((l) => !/^etc\/(hosts|resolv\.conf|hostname) /.test(l) && !/^data\/./.test(l));
  assert.equal(image, seen);
  assert.ok(
    !image.some((l) => l.startsWith('etc/hosts ') || l.startsWith('etc/hostname ') || l.startsWith('etc/resolv.conf ')),
  );
  assert.ok(image.includes('etc/app/'));
  assert.not.ok(image.some((l) => l.startsWith('etc/app/c '))); // opaque dir: the old content is gone
});

/** The freezer of the cgroup holding `pid` (v1 freezer.state, else v2 cgroup.freeze), as commit uses it. */
function freezerOf(pid: number): { freeze: () => void; thaw: () => void; frozen: () => boolean } {
  const text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  const v1 = text.match(/^\d+:(?:[^:]*,)?freezer(?:,[^:]*)?:(\/.+)$/m)?.[1];
  const v2 = text.match(/^0::(\/.+)$/m)?.[1];
  const [file, on, off, state] =
    v1 && existsSync('/sys/fs/cgroup/freezer')
      ? [`/sys/fs/cgroup/freezer${v1}/freezer.state`, 'FROZEN', 'THAWED', `/sys/fs/cgroup/freezer${v1}/freezer.state`]
      : [`/sys/fs/cgroup${v2}/cgroup.freeze`, '1', '0', `/sys/fs/cgroup${v2}/cgroup.events`];
  return {
    freeze: () => writeFileSync(file, on),
    thaw: () => {
      try {
        writeFileSync(file, off);
      } catch {
        /* gone */
      }
    },
    frozen: () => {
      try {
        return /^(FROZEN|frozen 1)$/m.test(readFileSync(state, 'utf8'));
      } catch {
        return false;
      }
    },
  };
}

// A commit freezes the container while it reads it; SIGKILLed then, nothing of it thaws it again
// (the freezer is left as below). rm -f must still end the container rather than leave frozen
// processes (a frozen process acts on SIGKILL only when thawed, on cgroup v1).
test('rm -f ends a container that a commit killed mid-way left frozen', async () => {
  const id = detached(['--name', 'frozen1', Base, 'sleep', '300']);
  const pid = inspect(id).State.Pid!;
  const f = freezerOf(pid);
  try {
    f.freeze();
    await until('the container frozen', () => f.frozen() || undefined);
    ok(t(['rm', '-f', 'frozen1']));
    await until(`container init ${pid} gone after rm -f`, () => gone(pid) || undefined, 20_000);
  } finally {
    f.thaw();
  }
});

test('--cpu-quota 20000 --cpu-period 100000: a busy loop is throttled, and gets 20 ms a period, no more', async () => {
  // Judged by the container's cgroup counters (periods it ran in, periods it hit the quota, CPU
  // time), not by CPU time over wall time, which a loaded machine moves.
  const quota = ['--cpu-quota', '20000', '--cpu-period', '100000'];
  detached(['--name', 'cpu1', ...quota, Base, 'sh', '-c', 'while :; do :; done']);
  try {
    const cgroups = runCgroupsOf(inspect('cpu1').State.Pid!);
    assert.ok(cgroups.length > 0, 'the container has a cgroup');
    const { usageNs, periods, throttled } = await throttledCounters(cgroups);
    const quotaNs = 20_000_000;
    assert.ok(usageNs <= periods * quotaNs * 1.25, `${usageNs / 1e6} ms of CPU in ${periods} periods of 20 ms quota`);
    assert.ok(usageNs >= throttled * quotaNs * 0.75, `${usageNs / 1e6} ms of CPU, throttled in ${throttled} periods`);
  } finally {
    ok(t(['rm', '-f', 'cpu1']));
  }
});

test('--memory 32m: an OOM kill is reported as 137', () => {
  const r = t([
    'run',
    '--name',
    'oom1',
    '--memory',
    '32m',
    Base,
    'dd',
    'if=/dev/zero',
    'of=/dev/null',
    'bs=100M',
    'count=1',
  ]);
  started.push('oom1');
  assert.is(r.code, 137, r.stderr);
  assert.is(inspect('oom1').State.OOMKilled, true);
});

test('--network none has only lo; host sees the host interfaces; container:NAME shares one', () => {
  assert.is(ok(t(['run', '--rm', '--network', 'none', Base, 'ls', '/sys/class/net'])).stdout, 'lo\n');
  const host = readdirSync('/sys/class/net').sort();
  assert.equal(
    ok(t(['run', '--rm', '--network', 'host', Base, 'ls', '/sys/class/net']))
      .stdout.trim()
      .split(/\s+/)
      .sort(),
    host,
  );
  detached(['--name', 'net1', '--network', 'none', Base, 'sleep', '300']);
  const r = ok(t(['run', '--rm', '--network', 'container:net1', Base, 'ls', '/sys/class/net']));
  assert.is(r.stdout, 'lo\n');
  ok(t(['rm', '-f', 'net1']));
});

test('a detached container outlives the tsbuild that started it; ps and stop from a new one', async () => {
  detached(['--name', 'bg1', Base, 'sleep', '300']);
  // No tsbuild process is left: a fresh one sees it running, then stops it.
  assert.match(ok(t(['ps'])).stdout, /Up .*bg1/);
  ok(t(['stop', '-t', '1', 'bg1']));
  // sleep is PID 1 and has no SIGTERM handler: killed after the timeout, as `docker stop` does.
  assert.match(ok(t(['ps', '-a'])).stdout, /Exited \(137\).*bg1/);
});

test('a container that died while nobody watched shows its exit code', async () => {
  detached(['--name', 'bg2', Base, 'sh', '-c', 'sleep 0.3; exit 7']);
  // Its supervisor writes the exit into the state, then ends: once it is gone, the state is final.
  const runner = inspect('bg2').State.Runner!;
  assert.ok(runner);
  await until('the supervisor of bg2 to end', () => gone(runner) || undefined);
  assert.match(ok(t(['ps', '-a'])).stdout, /Exited \(7\).*bg2/);
});

test('if the supervisor dies too, ps says exited (unknown) and the container can be removed', async () => {
  detached(['--name', 'bg3', Base, 'sleep', '300']);
  const st = inspect('bg3').State;
  assert.ok(st.Runner && st.Pid);
  // Its sandbox run (named <supervisor pid>-…): a cgroup per hierarchy and a state directory, which the
  // killed supervisor cannot remove; `rm` must not leave them behind.
  const cgroups = runCgroupsOf(st.Pid);
  assert.ok(cgroups.length > 0, `bg3's init (${st.Pid}) is in no tsbuild cgroup`);
  const runId = basename(cgroups[0]);
  assert.ok(runId.startsWith(`${st.Runner}-`), `${runId} is not a run of the supervisor ${st.Runner}`);
  const stateDir = join(defaultStateDir(), runId);
  assert.ok(existsSync(stateDir), `${stateDir} is not there while bg3 runs`);
  process.kill(st.Runner, 'SIGKILL');
  // The container's init goes when its supervisor is killed; ps is asked once it has.
  await until(`bg3's init (${st.Pid}) to die with its supervisor`, () => gone(st.Pid!) || undefined);
  assert.match(ok(t(['ps', '-a'])).stdout, /Exited \(unknown\).*bg3/);
  assert.is(inspect('bg3').State.ExitCode, null);
  ok(t(['rm', 'bg3']));
  assert.not.match(ok(t(['ps', '-a'])).stdout, /bg3/);
  // No sandbox run has started since the kill (nothing else swept them): rm did, supervisor zombie or not.
  assert.equal(
    [...cgroups, stateDir].filter((p) => existsSync(p)),
    [],
    "rm leaves the killed supervisor run's cgroups and state directory",
  );
});

test('a container keeps its image through prune --all --grace 0s (its lease), until it is removed', () => {
  const id = detached(['--name', 'pr1', img, 'sleep', '300']);
  // -f: as docker's, rmi refuses the last tag of an image a container uses without it.
  ok(t(['rmi', '-f', img]));
  ok(t(['prune', '--all', '--grace', '0s']));
  assert.ok(readdirSync(join(root, 'leases')).includes(`container-${id}.lease`));
  // The image is gone by name but the container keeps its blobs; it still restarts.
  ok(t(['stop', '-t', '0', id]));
  ok(t(['start', 'pr1']));
  assert.match(ok(t(['ps'])).stdout, /pr1/);
  ok(t(['rm', '-f', '-v', 'pr1']));
  assert.not.ok(readdirSync(join(root, 'leases')).includes(`container-${id}.lease`), 'rm removes the lease');
  mkdirSync(join(root, 'x'), { recursive: true });
});

test('run -it: Ctrl-C reaches the container through its terminal, as with docker run -it', () => {
  // script(1) gives tsbuild a terminal; the Ctrl-C byte goes through the raw terminal to the pty.
  const cmd =
    `${JSON.stringify(process.execPath)} ` +
    `${JSON.stringify(join(repoRoot(), 'packages/builder/bin/tsbuild.js'))} run --rm -it ${Base} sh -c 'trap "echo ` +
    `got-int; exit 5" INT; tty; echo ready; sleep 20 & wait'; echo rc=$?`;
  const r = spawnSync('sh', ['-c', `(sleep 3; printf '\\003'; sleep 10) | script -qfc "$0" /dev/null`, cmd], {
    encoding: 'utf8',
    env: { ...process.env, TSBUILD_ROOT: root },
    timeout: 30000,
  });
  assert.match(r.stdout, /\/dev\/pts\/0/);
  assert.match(r.stdout, /got-int/);
  assert.match(r.stdout, /rc=5/);
});

test.run();
