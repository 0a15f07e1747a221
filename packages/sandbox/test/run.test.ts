// How a run ends and what it prints: exit codes, signals, start errors, complete ordered output.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Readable } from 'node:stream';
import { sh, Collect, freshRoot, stateDir } from './helpers.js';
import { run } from '../src/index.js';

// `init`: the run has an init as PID 1 in front of the command. The command as PID 1 (the default)
// receives no signal from inside its namespace that it has no handler for, SIGKILL included.
const endings: {
  name: string;
  argv: string[] | string;
  code: number;
  signal?: string;
  startError?: RegExp;
  init?: boolean;
}[] = [
  { name: 'exit 0', argv: ['true'], code: 0 },
  { name: 'exit 1', argv: ['false'], code: 1 },
  { name: 'exit 42', argv: 'exit 42', code: 42 },
  { name: 'killed (SIGKILL) is 137', argv: 'kill -KILL $$', code: 137, signal: 'SIGKILL', init: true },
  { name: 'SIGTERM death is 143', argv: 'kill -TERM $$', code: 143, signal: 'SIGTERM', init: true },
  { name: 'SIGSEGV death is 139', argv: 'kill -SEGV $$', code: 139, signal: 'SIGSEGV', init: true },
  { name: 'PID 1 ignores unhandled signals from inside', argv: 'kill -KILL $$; kill -TERM $$; exit 3', code: 3 },
  { name: 'PID 1 runs its own handler', argv: 'trap "exit 9" TERM; kill -TERM $$; sleep 60', code: 9 },
  { name: 'init: command not in PATH', argv: ['no-such-command'], code: 127, startError: /not found/, init: true },
  { name: 'exit 137 by choice is not a signal', argv: 'exit 137', code: 137 },
  {
    name: 'command not in PATH',
    argv: ['no-such-command'],
    code: 127,
    startError: /^exec: "no-such-command": executable file not found in \$PATH$/,
  },
  {
    name: 'absolute path missing',
    argv: ['/no/such'],
    code: 127,
    startError: /^exec: "\/no\/such": stat \/no\/such: no such file or directory$/,
  },
  {
    name: 'not executable',
    argv: ['/etc/passwd'],
    code: 126,
    startError: /^exec: "\/etc\/passwd": permission denied$/,
  },
  { name: 'a directory', argv: ['/etc'], code: 126, startError: /^exec: "\/etc": permission denied$/ },
];

for (const c of endings) {
  test(`ends: ${c.name}`, async () => {
    const r = await sh(c.argv, { init: c.init });
    assert.is(r.code, c.code, r.err);
    assert.is(r.signal, c.signal);
    assert.is(r.oomKilled, false);
    if (c.startError) assert.match(r.startError ?? '', c.startError);
    else assert.is(r.startError, undefined);
  });
}

test('a missing cwd is a start error', async () => {
  const r = await sh(['true'], { cwd: '/no/such/dir' });
  assert.is(r.code, 126);
  assert.match(r.startError ?? '', /working directory \/no\/such\/dir: No such file/);
});

test('argv, env, cwd, uid, gid, groups and hostname reach the command', async () => {
  const r = await sh(['sh', '-c', 'echo "$1|$FOO|$(pwd)|$(id -u):$(id -g)|$(id -G)|$(hostname)"', 'x', 'a b'], {
    env: ['PATH=/bin', 'FOO=bar=baz'],
    cwd: '/etc',
    uid: 1000,
    gid: 1000,
    additionalGids: [100],
    hostname: 'box',
  });
  assert.is(r.out, 'a b|bar=baz|/etc|1000:1000|1000 100|box\n');
  assert.is(r.code, 0);
});

test('PATH from the spec finds the command', async () => {
  const r = await sh(['busybox', 'true'], { env: ['PATH=/nothing:/bin'] });
  assert.is(r.code, 0);
  const r2 = await sh(['busybox', 'true'], { env: ['PATH=/nothing'] });
  assert.is(r2.code, 127);
});

test('stdout and stderr are complete and in order', async () => {
  const r = await sh('seq 1 100000; seq 1 50000 >&2');
  const lines = (n: number) => Array.from({ length: n }, (_, i) => `${i + 1}\n`).join('');
  assert.ok(r.out === lines(100000), 'stdout differs');
  assert.ok(r.err === lines(50000), 'stderr differs');
});

test('50 MB of output arrives whole', async () => {
  const out = new Collect();
  const exit = await run({
    root: freshRoot(),
    argv: ['dd', 'if=/dev/zero', 'bs=1048576', 'count=50'],
    env: ['PATH=/bin'],
    cwd: '/',
    uid: 0,
    gid: 0,
    network: 'none',
    stdout: out,
    stateDir,
  });
  assert.is(exit.code, 0);
  assert.is(out.buf.length, 50 * 1024 * 1024);
});

test('stdin is delivered', async () => {
  const r = await sh(['sh', '-c', 'wc -c; echo done'], { stdin: Readable.from([Buffer.alloc(300000, 'a')]) });
  assert.is(r.out.trim().split(/\s+/).join(' '), '300000 done');
});

test('hosts, resolv.conf and hostname are per-run files', async () => {
  const r = await sh('cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; cat /etc/hostname', {
    hosts: '10.0.0.1 db\n',
    resolvConf: 'nameserver 10.0.0.53\n',
    hostname: 'h1',
  });
  assert.is(r.out, '10.0.0.1 db\n---\nnameserver 10.0.0.53\n---\nh1\n');
});

test('the dev nodes exist and are usable', async () => {
  const r = await sh(
    'echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c && ls /dev/pts/ptmx ' +
      '/dev/shm && stat -c %a /dev/null',
  );
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /666\n$/);
});

test("network 'host' shares the host's interfaces", async () => {
  const { readFileSync } = await import('node:fs');
  const names = (text: string) =>
    text
      .split('\n')
      .slice(2)
      .map((l) => l.split(':')[0].trim())
      .filter(Boolean)
      .sort();
  const r = await sh('cat /proc/net/dev', { network: 'host' });
  assert.equal(names(r.out), names(readFileSync('/proc/net/dev', 'utf8')));
});

test.run();
