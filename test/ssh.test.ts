// --ssh and RUN --mount=type=ssh: `ssh-add -l` inside a step sees the keys of the agent given with
// --ssh (a key file through a private agent, an agent socket, or $SSH_AUTH_SOCK for `default`),
// while neither the socket nor the key reaches a layer or the cache key, and no agent outlives the build.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { have, skip } from '@tsbuild/testkit';
import { Base, cleanup, context, ok, storeWithBase, tsbuild, tempDirs } from './helpers/cli.js';
import { steps } from './helpers/progress.js';

const { temp, dirs } = tempDirs();
let agent: ChildProcess | undefined;
test.after(async () => {
  if (agent?.exitCode === null) {
    const gone = new Promise((r) => agent!.once('exit', r));
    agent.kill('SIGTERM');
    await gone;
  }
  cleanup(...dirs);
});

const missing = ['ssh-agent', 'ssh-add', 'ssh-keygen', 'ldd'].filter((c) => !have(c));

/** A key pair with this comment. */
function keygen(comment: string): string {
  const key = join(temp('key'), 'id');
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', key]);
  assert.is(r.status, 0, String(r.stderr));
  return key;
}

/** A context whose image has the host's ssh-add (and the libraries it loads) over busybox. */
function sshContext(dockerfileRun: string): string {
  const ctx = context({ Dockerfile: `FROM ${Base}\nCOPY tools/ /\n${dockerfileRun}\n` });
  dirs.push(ctx);
  const ldd = spawnSync('ldd', ['/usr/bin/ssh-add'], { encoding: 'utf8' }).stdout;
  for (const f of ['/usr/bin/ssh-add', ...(ldd.match(/\/\S+/g) ?? [])]) {
    mkdirSync(join(ctx, 'tools', dirname(f)), { recursive: true });
    copyFileSync(f, join(ctx, 'tools', f));
  }
  return ctx;
}

/** Pids of ssh-agent processes that serve a socket tsbuild made. */
function tsbuildAgents(): string[] {
  return readdirSync('/proc').filter((pid) => {
    if (!/^\d+$/.test(pid)) return false;
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('tsbuild-ssh-');
    } catch {
      return false;
    }
  });
}

const run = 'RUN --mount=type=ssh ssh-add -l > /keys; echo "rc=$?" >> /keys';

test('ssh-add -l in a step lists the keys of --ssh ID=KEYFILE, --ssh ID=SOCKET and --ssh default', async () => {
  if (missing.length) return skip(`${missing.join(', ')} not installed (apt-get install openssh-client)`);
  const root = storeWithBase(temp('store'));
  const ctx = sshContext(run);
  const key = keygen('tsbuild-key-file');
  // An agent of our own, as a user's: for --ssh default (SSH_AUTH_SOCK) and --ssh ID=SOCKET.
  const sock = join(temp('agent'), 'sock');
  agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise((r) => agent!.stdout!.once('data', r));
  const own = keygen('tsbuild-user-agent');
  assert.is(spawnSync('ssh-add', ['-q', own], { env: { ...process.env, SSH_AUTH_SOCK: sock } }).status, 0);

  const cases = [
    { name: 'key file', args: ['--ssh', `default=${key}`], env: {}, want: 'tsbuild-key-file' },
    { name: 'socket', args: ['--ssh', `default=${sock}`], env: {}, want: 'tsbuild-user-agent' },
    { name: 'SSH_AUTH_SOCK', args: ['--ssh', 'default'], env: { SSH_AUTH_SOCK: sock }, want: 'tsbuild-user-agent' },
  ];
  for (const [i, c] of cases.entries()) {
    const out = join(temp('out'), 'o');
    // --no-cache: the agent is not in the key, so without it the second case would be a hit.
    const r = ok(tsbuild(['build', '--no-cache', ...c.args, '-o', out, ctx], { root, env: c.env }), c.name);
    const keys = readFileSync(join(out, 'keys'), 'utf8');
    assert.match(keys, c.want, `${c.name}: ${keys}`);
    assert.match(keys, /rc=0/, c.name);
    // The socket is a mount: it is not in the image's files.
    assert.not.ok(existsSync(join(out, 'run', 'buildkit')), `${c.name}: /run/buildkit in the image`);
    assert.equal(tsbuildAgents(), [], `${c.name}: a private ssh-agent outlived the build`);
    if (i === 0) assert.not.match(r.stderr, /PRIVATE KEY/);
  }
});

test('the agent is not in the cache key: another key is a hit; without --ssh, required=true fails clearly', () => {
  if (missing.length) return skip(`${missing.join(', ')} not installed (apt-get install openssh-client)`);
  const root = storeWithBase(temp('store-key'));
  const ctx = sshContext(run);
  ok(tsbuild(['build', '--ssh', `default=${keygen('one')}`, ctx], { root }));
  const again = ok(tsbuild(['build', '--progress=plain', '--ssh', `default=${keygen('two')}`, ctx], { root }));
  assert.equal(steps(again.stderr).ran, [], again.stderr);

  const required = sshContext('RUN --mount=type=ssh,id=deploy,required=true ssh-add -l');
  const r = tsbuild(['build', required], { root });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /ssh agent "deploy" is required but was not given \(--ssh deploy\)/);
  // Not required: the step runs without an agent (ssh-add -l then finds none: exit 2).
  const optional = sshContext('RUN --mount=type=ssh ssh-add -l; test $? = 2 && echo no-agent > /n');
  ok(tsbuild(['build', optional], { root }));
});

test('bad --ssh values: exit 2 naming the flag', () => {
  const root = temp('store-usage');
  const ctx = context({ Dockerfile: 'FROM scratch\n' });
  dirs.push(ctx);
  const cases = [
    { args: ['--ssh', 'default=/no/such/key'], env: {}, stderr: /--ssh default=\/no\/such\/key: .*neither an agent/ },
    { args: ['--ssh', 'default'], env: { SSH_AUTH_SOCK: '' }, stderr: /--ssh default: SSH_AUTH_SOCK is not set/ },
    { args: ['--ssh', 'bad id=x'], env: {}, stderr: /--ssh "bad id=x": expected default\|ID/ },
  ];
  for (const c of cases) {
    const r = tsbuild(['build', ...c.args, ctx], { root, env: c.env });
    assert.is(r.code, 2, `${c.args.join(' ')}\n${r.stderr}`);
    assert.match(r.stderr, c.stderr, c.args.join(' '));
  }
  const notKey = join(temp('notkey'), 'k');
  spawnSync('sh', ['-c', `echo not-a-key > ${notKey}`]);
  const r = tsbuild(['build', '--ssh', `x=${notKey}`, ctx], { root });
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /--ssh x: .*ssh-add failed/);
  assert.equal(tsbuildAgents(), [], 'the agent started for a bad key is stopped');
});

test.run();
