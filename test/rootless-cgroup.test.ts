// Rootless with a delegated cgroup v2 subtree (systemd's Delegate=yes contract), proven on this
// host's own cgroup2 hierarchy: root makes a cgroup there and hands it to an ordinary user (the
// directory, cgroup.procs, cgroup.subtree_control, cgroup.threads), the user's tsbuild starts inside
// it, and each run gets a child cgroup of it. A hybrid host's cgroup2 carries no cpu, memory or pids
// controller, so --memory is reported as not applied, naming why; freezing (commit) works through
// the child's cgroup.freeze all the same. Everything made is removed, even when a row fails.
// useradd and /etc/subuid edits are not safe beside another file that makes users.
// test-runner: group users
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { skip, have } from '@tsbuild/testkit';
import { Base, ok } from './helpers/cli.js';
import { createUser, removeUser, tsbuildAs, userContext, type TestUser } from './helpers/user.js';
import { cgroup2Root, delegateCgroup, removeCgroup, type DelegatedCgroup } from './helpers/cgroup.js';

let user: TestUser | undefined;
let cg: DelegatedCgroup | undefined;
let why = '';

test.before(() => {
  if (!have('newuidmap') || !have('setpriv') || !have('useradd')) {
    why = 'newuidmap (uidmap), setpriv and useradd are needed';
    return;
  }
  if (!cgroup2Root()) {
    why = 'no cgroup2 hierarchy is mounted';
    return;
  }
  user = createUser({ ranges: true });
  try {
    cg = delegateCgroup(user.uid, user.gid);
  } catch (e) {
    why = `cannot make a cgroup to delegate under ${cgroup2Root()}: ${(e as Error).message}`;
    return;
  }
  ok(tsbuildAs(user, ['build', '-q', '-t', Base, join(user.checkout, 'fixtures', 'busybox')], { cgroup: cg.dir }));
});

test.after(async () => {
  try {
    await removeCgroup(cg);
  } finally {
    removeUser(user);
  }
});

const controllers = () => readFileSync(join(cg!.dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);

test('info in a delegated cgroup: the cgroup and its controllers; outside it: none, and why', () => {
  if (!user || !cg) return skip(why);
  const info = JSON.parse(ok(tsbuildAs(user, ['info', '--format', 'json'], { cgroup: cg.dir })).stdout);
  assert.is(info.rootless, true);
  assert.is(info.limits.cgroup, 'v2');
  assert.equal(info.limits.delegated, { dir: cg.dir, controllers: controllers() });
  assert.match(info.limits.note, 'delegated to you');
  const text = ok(tsbuildAs(user, ['info'], { cgroup: cg.dir })).stdout;
  assert.match(text, new RegExp(`^  delegated: +${cg.dir}$`, 'm'));
  assert.match(text, new RegExp(`^  ctrls: +${controllers().join(' ') || 'none'}$`, 'm'));
  // The same user outside it: its cgroup is the host's, not delegated.
  const outside = JSON.parse(ok(tsbuildAs(user, ['info', '--format', 'json'])).stdout);
  assert.is(outside.limits.cgroup, 'none');
  assert.is(outside.limits.delegated, undefined);
  assert.match(outside.limits.note, /no cgroup is delegated to you here \(/);
});

test('a RUN step and a container run in a child cgroup of the delegated one, removed afterwards', async () => {
  if (!user || !cg) return skip(why);
  // Inside, the run's own cgroup is its /sys/fs/cgroup (cgroup namespace: /proc/self/cgroup is "/"):
  // its cgroup.procs lists the step's processes. Without a cgroup that directory is empty.
  const ctx = userContext(user, 'cg', {
    Dockerfile: `FROM ${Base}\nRUN grep '^0::' /proc/self/cgroup > /cg && wc -l < /sys/fs/cgroup/cgroup.procs > /n\n`,
  });
  ok(tsbuildAs(user, ['build', '-q', '-t', 'cg:1', ctx], { cgroup: cg.dir }));
  const show = ok(tsbuildAs(user, ['run', '--rm', 'cg:1', 'sh', '-c', 'cat /cg /n'], { cgroup: cg.dir })).stdout;
  assert.match(show, /^0::\/\n\s*[1-9]\d*\n$/);
  // Seen from the host: a detached container's init is in <delegated>/tsbuild/<run id>.
  const id = ok(tsbuildAs(user, ['run', '-d', '--name', 'cgbg', Base, 'sleep', '300'], { cgroup: cg.dir })).stdout;
  try {
    const doc = JSON.parse(ok(tsbuildAs(user, ['inspect', id.trim()], { cgroup: cg.dir })).stdout);
    const pid = (Array.isArray(doc) ? doc[0] : doc).State.Pid as number;
    const path = /^0::(\/.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1] ?? '';
    assert.match(path, new RegExp(`^${cg.path}/tsbuild/[^/]+$`), path);
    assert.ok(readFileSync(join(cg.dir, path.slice(cg.path.length), 'cgroup.procs'), 'utf8').includes(`${pid}\n`));
    ok(tsbuildAs(user, ['rm', '-f', 'cgbg'], { cgroup: cg.dir }));
    // The container's supervisor removes it once its run has ended, which `rm -f` need not wait for.
    const run = join(cg.dir, path.slice(cg.path.length));
    for (let i = 0; i < 400 && existsSync(run); i++) await new Promise((r) => setTimeout(r, 25));
    assert.not.ok(existsSync(run), 'the run cgroup was removed');
  } finally {
    tsbuildAs(user, ['rm', '-f', 'cgbg'], { cgroup: cg.dir });
  }
  // Every run's cgroup is gone: only the (empty) parent of the run cgroups is left.
  for (let i = 0; i < 400 && readdirSync(join(cg.dir, 'tsbuild')).some((n) => !n.includes('.')); i++)
    await new Promise((r) => setTimeout(r, 25));
  const runs = readdirSync(join(cg.dir, 'tsbuild'), { withFileTypes: true }).filter((e) => e.isDirectory());
  assert.equal(
    runs.map((e) => e.name),
    [],
  );
});

test('--memory and --pids-limit: said once, naming the flags and the controllers missing; the run goes on', () => {
  if (!user || !cg) return skip(why);
  const have = controllers();
  if (have.includes('memory') || have.includes('pids'))
    return skip(`this host delegates ${have.join(' ')}: the row is about controllers that are not`);
  const r = ok(
    tsbuildAs(user, ['run', '--rm', '--memory', '64m', '--pids-limit', '50', Base, 'echo', 'ran'], { cgroup: cg.dir }),
  );
  assert.is(r.stdout, 'ran\n');
  assert.is(r.stderr.match(/not applied/g)?.length ?? 0, 1, r.stderr);
  assert.match(r.stderr, `--memory, --pids-limit not applied: the cgroup delegated to you (${cg.dir}) has no`);
  assert.match(r.stderr, /has no memory, pids controller/);
});

test('commit of a running container freezes it through its delegated cgroup', () => {
  if (!user || !cg) return skip(why);
  const id = ok(
    tsbuildAs(user, ['run', '-d', '--name', 'cgc', Base, 'sh', '-c', 'echo made > /f; exec sleep 300'], {
      cgroup: cg.dir,
    }),
  ).stdout.trim();
  try {
    // The file is there before the commit: exec sees it (exec joins the container's cgroup too).
    ok(tsbuildAs(user, ['exec', id, 'sh', '-c', 'while [ ! -s /f ]; do sleep 0.05; done'], { cgroup: cg.dir }));
    const c = ok(tsbuildAs(user, ['commit', 'cgc', 'cgc:1'], { cgroup: cg.dir }));
    assert.not.match(c.stderr, /SIGSTOP/, 'paused by its cgroup, not by signals');
    const after = ok(tsbuildAs(user, ['run', '--rm', 'cgc:1', 'cat', '/f'], { cgroup: cg.dir }));
    assert.is(after.stdout, 'made\n');
    // Still running, thawed: exec works.
    assert.is(ok(tsbuildAs(user, ['exec', 'cgc', 'echo', 'alive'], { cgroup: cg.dir })).stdout, 'alive\n');
  } finally {
    tsbuildAs(user, ['rm', '-f', 'cgc'], { cgroup: cg.dir });
  }
});

test.run();
