// Rootless: the real CLI run by an ordinary user (made here with useradd and subordinate ranges),
// against the same CLI run by root. The central proof: a multi-stage build whose files belong to
// other users (a user added as adduser does, chown 1000:1000, a setuid/setgid file, whiteouts and
// an opaque directory) gives the SAME image digest rootless and as root, under SOURCE_DATE_EPOCH.
// useradd and /etc/subuid edits are not safe beside another file that makes users.
// test-runner: group users
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { setXattr } from '@tsbuild/layerstore/layer';
import { join } from 'node:path';
import { startRegistry, skip, have, type TestRegistry } from '@tsbuild/testkit';
import { Base, cleanup, ok, repo, storeWithBase, tempDir, tsbuild, type Result } from './helpers/cli.js';
import { createUser, removeUser, runAs, tsbuildAs, userContext, type TestUser } from './helpers/user.js';

const SDE = { SOURCE_DATE_EPOCH: '1700000000' };

// Debian's static busybox has no adduser applet: the first RUN adds the user as adduser does.
const multiStage = `FROM ${Base} AS base
RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group \\
 && mkdir -p /home/app && chown 1000:1000 /home/app
RUN mkdir /data && echo hi > /data/f && chown 1000:1000 /data /data/f \\
 && cp /bin/busybox /usr/bin/suid && chown 0:1234 /usr/bin/suid && chmod 6755 /usr/bin/suid \\
 && mkdir -p /deep/er && chown 65000:65001 /deep/er
RUN rm -rf /var/tmp && rm -rf /home && mkdir /home && echo x > /home/new
FROM ${Base}
COPY --from=base /etc/passwd /etc/group /etc/
COPY --from=base /data /data
COPY --from=base --chown=2000:3000 /deep /deep
COPY --from=base /usr/bin/suid /usr/bin/suid
RUN rm -rf /var/tmp && mkdir -p /home/app && chown app:app /home/app
USER app
RUN id -u > /home/app/id && echo made > /home/app/by-app
`;

let user: TestUser | undefined;
let rootStore: string;
const dirs: string[] = [];

function runRoot(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
}

function q(r: Result): string {
  return ok(r).stdout.trim().split('\n').pop()!;
}

test.before(() => {
  if (!have('newuidmap') || !have('setpriv') || !have('useradd')) return;
  user = createUser({ ranges: true });
  ok(tsbuildAs(user, ['build', '-q', '-t', Base, join(user.checkout, 'fixtures', 'busybox')], { env: SDE }), 'base');
  rootStore = storeWithBase();
  dirs.push(rootStore);
});

test.after(() => {
  removeUser(user);
  cleanup(...dirs);
});

test('info as an ordinary user: rootless, its subordinate ranges mapped, the store in its home, no limits', () => {
  if (!user) return skip('newuidmap (uidmap), setpriv and useradd are needed');
  const info = JSON.parse(ok(tsbuildAs(user, ['info', '--format', 'json'])).stdout);
  assert.is(info.rootless, true);
  assert.is(info.hostUid, user.uid);
  assert.is(info.idMapping, 'ranges');
  assert.equal(info.uidMap, [
    { inside: 0, outside: user.uid, count: 1 },
    { inside: 1, outside: 300000, count: 65536 },
  ]);
  assert.equal(info.gidMap[0], { inside: 0, outside: user.gid, count: 1 });
  assert.is(info.store, join(user.home, '.local', 'share', 'tsbuild'));
  assert.is(info.overlay.mode, 'native-userxattr');
  assert.is(info.limits.cgroup, 'none');
  const text = ok(tsbuildAs(user, ['info'])).stdout;
  assert.match(text, /^Rootless: +yes/m);
  assert.match(text, /1-65536 -> 300000-365535/);
  // And root is not rootless.
  assert.match(ok(tsbuild(['info'], { root: rootStore })).stdout, /^Rootless: +no/m);
  // The store belongs to the user on the host.
  assert.is(lstatSync(info.store).uid, user.uid);
  // `node bin/tsbuild.js` (not the tsbuild command) runs rootless too.
  const js = join(user.checkout, 'packages', 'builder', 'bin', 'tsbuild.js');
  assert.is(
    JSON.parse(ok(runAs(user, ['/usr/bin/env', 'node', js, 'info', '--format', 'json'])).stdout).rootless,
    true,
  );
});

test('multi-stage build with other users, chown 1000:1000 and a setuid file: the same digest rootless as root', () => {
  if (!user) return skip('newuidmap (uidmap), setpriv and useradd are needed');
  const ctx = userContext(user, 'multi', { Dockerfile: multiStage });
  const mine = q(tsbuildAs(user, ['build', '-q', '-t', 'rl:1', ctx], { env: SDE }));
  const roots = q(tsbuild(['build', '-q', '-t', 'rl:1', ctx], { root: rootStore, env: SDE }));
  assert.match(mine, /^sha256:[0-9a-f]{64}$/);
  assert.is(mine, roots, 'image id (config digest)');
  const manifest = (r: Result) => JSON.parse(ok(r).stdout).ManifestDigest as string;
  assert.is(
    manifest(tsbuildAs(user, ['inspect', 'rl:1'])),
    manifest(tsbuild(['inspect', 'rl:1'], { root: rootStore })),
  );
  // Not the same by being wrong the same way: the image holds the owners and modes asked for.
  const probe = [
    'run',
    '--rm',
    'rl:1',
    'stat',
    '-c',
    '%n %u:%g %a',
    '/data/f',
    '/usr/bin/suid',
    '/deep/er',
    '/home/app/by-app',
  ];
  const want =
    '/data/f 1000:1000 644\n/usr/bin/suid 0:1234 6755\n/deep/er 2000:3000 755\n/home/app/by-app 1000:1000 644\n';
  assert.is(ok(tsbuildAs(user, probe)).stdout, want);
  assert.is(ok(tsbuild(probe, { root: rootStore })).stdout, want);
  assert.is(ok(tsbuildAs(user, ['run', '--rm', 'rl:1', 'cat', '/home/app/id'])).stdout, '1000\n');
  // The removed /var/tmp and the opaque /home of the first stage stay removed/replaced.
  const ls = ok(tsbuildAs(user, ['run', '--rm', '--user', '0', 'rl:1', 'sh', '-c', 'ls /var; ls /home'])).stdout;
  assert.not.match(ls, /\btmp\b/);
  // In the user's store on the host, files of uid 1000 belong to the user's subordinate uid 300999.
  const snaps = join(user.home, '.local', 'share', 'tsbuild', 'snapshots');
  assert.ok(existsSync(snaps));
});

// A base with Debian's own useradd (fixtures/useradd: the host's binary, its libraries, login.defs).
const UseraddBase = 'tsbuild/useradd:1';
const withUseradd = `FROM ${UseraddBase}
RUN useradd -u 1234 -U -m -s /bin/sh app && mkdir -p /srv/data && echo x > /srv/data/f && chown -R 1234:1234 /srv/data
USER app
RUN echo mine > /home/app/by-app
`;

test('RUN useradd (the real one) and chown 1234: the same digest rootless as root', () => {
  if (!user) return skip('newuidmap (uidmap), setpriv and useradd are needed');
  const made = spawnSync('bash', [join(repo, 'fixtures', 'useradd', 'make-rootfs.sh')], { encoding: 'utf8' });
  assert.is(made.status, 0, `fixtures/useradd/make-rootfs.sh: ${made.stderr}`);
  const fixture = (checkout: string) => join(checkout, 'fixtures', 'useradd');
  ok(tsbuildAs(user, ['build', '-q', '-t', UseraddBase, fixture(user.checkout)], { env: SDE }), 'useradd base');
  ok(tsbuild(['build', '-q', '-t', UseraddBase, fixture(repo)], { root: rootStore, env: SDE }), 'useradd base');
  const ctx = userContext(user, 'useradd', { Dockerfile: withUseradd });
  const mine = q(tsbuildAs(user, ['build', '-q', '-t', 'ua:1', ctx], { env: SDE }));
  const roots = q(tsbuild(['build', '-q', '-t', 'ua:1', ctx], { root: rootStore, env: SDE }));
  assert.match(mine, /^sha256:[0-9a-f]{64}$/);
  assert.is(mine, roots, 'image id (config digest)');
  // useradd did its work: the user, its group, its shadow entry and its home, owned by 1234.
  const probe = [
    'run',
    '--rm',
    '--user',
    '0',
    'ua:1',
    'sh',
    '-c',
    'grep ^app: /etc/passwd /etc/group; grep -c ^app: /etc/shadow; stat -c "%n %u:%g" /home/app/by-app /srv/data/f',
  ];
  const want =
    '/etc/passwd:app:x:1234:1234::/home/app:/bin/sh\n/etc/group:app:x:1234:\n1\n' +
    '/home/app/by-app 1234:1234\n/srv/data/f 1234:1234\n';
  assert.is(ok(tsbuildAs(user, probe)).stdout, want);
  assert.is(ok(tsbuild(probe, { root: rootStore })).stdout, want);
});

test('-o type=local as the user: the files belong to the user, who can remove them', () => {
  if (!user) return skip('newuidmap (uidmap), setpriv and useradd are needed');
  const ctx = userContext(user, 'local', { Dockerfile: multiStage });
  const out = join(user.dir, 'tmp', 'local-out');
  ok(tsbuildAs(user, ['build', '-q', '-o', `type=local,dest=${out}`, ctx], { env: SDE }));
  assert.is(readFileSync(join(out, 'data', 'f'), 'utf8'), 'hi\n');
  // uid 1000 in the image would be the user's subordinate uid 300999 here, which it cannot remove
  // outside its namespace: like BuildKit rootless and tar run by a user, the export is the user's.
  for (const f of ['data/f', 'usr/bin/suid', 'deep/er', 'home/app'])
    assert.is(lstatSync(join(out, f)).uid, user.uid, f);
  ok(runAs(user, ['/bin/rm', '-rf', out]), 'rm -rf of the export, as the user');
  assert.not.ok(existsSync(out));
});

// GNU tar run by an ordinary user unpacks a 0555 directory and still writes its files into it (it holds the
// directory's mode back until its members are in): the stdin context of a rootless build loses nothing.
test('build - as the user: a context tar on stdin whose 0555 directory holds a file', () => {
  if (!user) return skip('newuidmap (uidmap), setpriv and useradd are needed');
  const src = join(user.dir, 'stdin-src');
  mkdirSync(join(src, 'ro', 'sub'), { recursive: true });
  writeFileSync(join(src, 'ro', 'sub', 'f'), 'in a 0555 dir\n');
  writeFileSync(join(src, 'Dockerfile'), `FROM ${Base}\nCOPY ro /ro\nRUN cat /ro/sub/f > /copied\n`);
  chmodSync(join(src, 'ro', 'sub'), 0o555);
  chmodSync(join(src, 'ro'), 0o555);
  // A tar of ASCII names and contents: the same bytes as a latin1 string.
  const tar = spawnSync('tar', ['-c', '-C', src, '.'], { encoding: 'latin1' });
  assert.is(tar.status, 0, tar.stderr);
  const out = join(user.dir, 'tmp', 'stdin-out');
  ok(tsbuildAs(user, ['build', '-q', '-o', `type=local,dest=${out}`, '-'], { input: tar.stdout }));
  assert.is(readFileSync(join(out, 'copied'), 'utf8'), 'in a 0555 dir\n');
  assert.is(lstatSync(join(out, 'ro', 'sub')).mode & 0o7777, 0o555, 'the directory keeps its mode');
});

/** A docker-save archive of the base plus a layer with etc/ marked user.overlay.opaque and etc/evil, for `load`. */
function opaqueMarkedImage(dir: string, tag: string): string {
  const x = join(dir, 'x');
  const stage = join(dir, 'stage');
  mkdirSync(join(stage, 'etc'), { recursive: true });
  writeFileSync(join(stage, 'etc', 'evil'), 'evil\n');
  // overlayfs's own attribute when it runs in a user namespace (userxattr): a layer must not set it.
  setXattr(join(stage, 'etc'), 'user.overlay.opaque', Buffer.from('y'));
  mkdirSync(x);
  ok(tsbuild(['save', '--format', 'docker', '-o', join(dir, 'base.tar'), Base], { root: rootStore }));
  runRoot('tar', ['-xf', join(dir, 'base.tar'), '-C', x]);
  mkdirSync(join(x, 'evil'));
  const layer = join(x, 'evil', 'layer.tar');
  const tarArgs = [
    '--xattrs',
    '--xattrs-include=user.*',
    '--numeric-owner',
    '--owner=0',
    '--group=0',
    '--no-recursion',
  ];
  runRoot('tar', ['-cf', layer, ...tarArgs, '-C', stage, 'etc', 'etc/evil']);
  const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
  const [m] = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8'));
  const config = JSON.parse(readFileSync(join(x, m.Config), 'utf8'));
  config.rootfs.diff_ids.push(`sha256:${sha(readFileSync(layer))}`);
  config.history.push({ created_by: 'a layer with overlay attributes' });
  const json = JSON.stringify(config);
  rmSync(join(x, m.Config));
  writeFileSync(join(x, `${sha(json)}.json`), json);
  const manifest = [{ Config: `${sha(json)}.json`, RepoTags: [tag], Layers: [...m.Layers, 'evil/layer.tar'] }];
  writeFileSync(join(x, 'manifest.json'), JSON.stringify(manifest));
  rmSync(join(x, 'index.json'), { force: true });
  rmSync(join(x, 'oci-layout'), { force: true });
  const out = join(dir, 'marked.tar');
  runRoot('tar', ['-cf', out, '-C', x, ...readdirSync(x)]);
  chmodSync(out, 0o644);
  return out;
}

test("a layer carrying user.overlay.opaque (overlay's own mark rootless) shows the same files rootless as root", () => {
  if (!user) return skip('newuidmap (uidmap), setpriv and useradd are needed');
  const work = join(user.dir, 'marked');
  mkdirSync(work);
  const archive = opaqueMarkedImage(work, 'marked:1');
  ok(tsbuildAs(user, ['load', '-i', archive]));
  ok(tsbuild(['load', '-i', archive], { root: rootStore }));
  const ls = ['run', '--rm', 'marked:1', 'ls', '/etc'];
  const mine = ok(tsbuildAs(user, ls)).stdout;
  assert.match(mine, /\bevil\b/);
  assert.match(mine, /\bpasswd\b/, 'the base /etc was hidden: the overlay attribute of the layer was applied');
  assert.is(mine, ok(tsbuild(ls, { root: rootStore })).stdout);
});

test('hostile RUN steps rootless: the host device nodes bound into /dev stay as they are', () => {
  if (!user) return skip('newuidmap (uidmap), setpriv and useradd are needed');
  // Rootless, /dev/null and the rest are binds of the host's own nodes, not nodes of the sandbox's.
  const nodes = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty'];
  const stat = () => nodes.map((n) => `${n} ${lstatSync(n).mode.toString(8)} ${lstatSync(n).uid}:${lstatSync(n).gid}`);
  const before = stat();
  const ctx = userContext(user, 'devs', {
    Dockerfile:
      `FROM ${Base}\nRUN for n in ${nodes.join(' ')}; do chmod 600 $n; chown 1:1 $n; rm -f $n; ` +
      'mount --bind /tmp $n; done; echo evil > /dev/null; ls -l /dev > /devs.txt; true\n',
  });
  ok(tsbuildAs(user, ['build', '-q', ctx]));
  assert.equal(stat(), before);
});

test('a setuid-root file a RUN step makes belongs, in the store on the host, to the user', () => {
  if (!user) return skip('newuidmap (uidmap), setpriv and useradd are needed');
  const marker = `suid-${process.pid}`;
  const ctx = userContext(user, 'suid', {
    Dockerfile: `FROM ${Base}\nRUN cp /bin/busybox /${marker} && chmod 4755 /${marker}\n`,
  });
  ok(tsbuildAs(user, ['build', '-q', ctx]));
  const snaps = join(user.home, '.local', 'share', 'tsbuild', 'snapshots');
  const found = readdirSync(snaps)
    .map((d) => join(snaps, d, marker))
    .filter((f) => existsSync(f));
  assert.ok(found.length > 0, 'the layer with the file is in the store');
  for (const f of found) {
    const st = lstatSync(f);
    assert.is(st.mode & 0o7777, 0o4755);
    // Root inside is the user outside: a setuid "root" binary from an untrusted RUN step runs as the user.
    assert.is(st.uid, user.uid);
  }
});

test('user-mode networking rootless: RUN and run reach a server on the host address, not its loopback', async () => {
  if (!user) return skip('newuidmap (uidmap), setpriv and useradd are needed');
  const ip = Object.values(networkInterfaces())
    .flatMap((l) => l ?? [])
    .find((a) => a.family === 'IPv4' && !a.internal)?.address;
  if (!ip) return skip('the host has no non-loopback IPv4 address');
  // Servers in a child process: the CLI runs synchronously below.
  const script =
    "const h=require('http');const a=h.createServer((q,r)=>r.end('outside')).listen(0,process.argv[1],()=>" +
    "{const b=h.createServer((q,r)=>r.end('LOOPBACK')).listen(0,'127.0.0.1',()=>" +
    "console.log(a.address().port+' '+b.address().port))});";
  const servers = spawn(process.execPath, ['-e', script, ip], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [port, loop] = await new Promise<string[]>((resolve) =>
      servers.stdout.once('data', (d: Buffer) => resolve(d.toString().trim().split(' '))),
    );
    // busybox's static wget crashes here (as root too): nc speaks the HTTP.
    const get = (host: string, p: string) =>
      `{ printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${host} ${p} | tail -n 1; echo; }`;
    const ctx = userContext(user, 'net', { Dockerfile: `FROM ${Base}\nRUN ${get(ip, port)} > /got\n` });
    ok(tsbuildAs(user, ['build', '-q', '-t', 'net:1', ctx]));
    assert.is(ok(tsbuildAs(user, ['run', '--rm', 'net:1', 'cat', '/got'])).stdout, 'outside\n');
    const gw = "$(ip route | awk '/^default/ {print $3}')";
    const r = ok(tsbuildAs(user, ['run', '--rm', Base, 'sh', '-c', `${get(gw, loop)}; ${get('127.0.0.1', loop)}`]));
    assert.not.match(r.stdout, /LOOPBACK/);
    assert.is(r.stdout, '\n\n', r.stderr);
  } finally {
    servers.kill('SIGKILL');
  }
});

test('run with a bind volume and a named volume: files written as root inside belong to the user outside', () => {
  if (!user) return skip('newuidmap (uidmap), setpriv and useradd are needed');
  const host = join(user.dir, 'vol');
  mkdirSync(host);
  chownSync(host, user.uid, user.gid);
  const r = ok(
    tsbuildAs(user, [
      'run',
      '--rm',
      '--memory',
      '64m',
      '-v',
      `${host}:/out`,
      '-v',
      'named:/named',
      Base,
      'sh',
      '-c',
      'echo hi > /out/f && echo kept > /named/g && id -u',
    ]),
  );
  assert.is(r.stdout, '0\n');
  assert.is(readFileSync(join(host, 'f'), 'utf8'), 'hi\n');
  assert.is(lstatSync(join(host, 'f')).uid, user.uid, 'root inside is the user outside');
  // The limit cannot be applied here (no delegated cgroup): said once, and the run went on.
  assert.is(r.stderr.match(/--memory/g)?.length ?? 0, 1, r.stderr);
  const again = ok(tsbuildAs(user, ['run', '--rm', '-v', 'named:/named', Base, 'cat', '/named/g']));
  assert.is(again.stdout, 'kept\n');
});

test('a detached container: exec from another command enters it (one user namespace), commit running, rm', () => {
  if (!user) return skip('newuidmap (uidmap), setpriv and useradd are needed');
  const id = ok(
    tsbuildAs(user, ['run', '-d', '--name', 'bg', Base, 'sh', '-c', 'echo up > /tmp/state; exec sleep 300']),
  ).stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  try {
    // Each command is a new process; exec can only setns into namespaces of the user namespace it is in.
    const r = ok(tsbuildAs(user, ['exec', 'bg', 'sh', '-c', 'cat /tmp/state; echo $$ > /dev/null; id -u']));
    assert.is(r.stdout, 'up\n0\n');
    // Committed while it runs: no cgroup is delegated here, so its processes are stopped (SIGSTOP) for
    // the walk of its upper dir, said once, and go on afterwards.
    const commit = ok(tsbuildAs(user, ['commit', 'bg', 'bg:1']));
    assert.is(commit.stderr.match(/SIGSTOP/g)?.length ?? 0, 1, commit.stderr);
    assert.is(ok(tsbuildAs(user, ['run', '--rm', 'bg:1', 'cat', '/tmp/state'])).stdout, 'up\n');
    const states = ok(tsbuildAs(user, ['exec', 'bg', 'sh', '-c', "grep -h '^State' /proc/1/status"])).stdout;
    assert.match(states, /^State:\s+S/, 'sleep runs again (not left stopped)');
    // --pause=false (docker's -p=false): nothing is stopped, the upper dir is read as it is.
    const unpaused = ok(tsbuildAs(user, ['commit', '-p=false', 'bg', 'bg:2']));
    assert.not.match(unpaused.stderr, /SIGSTOP/);
    assert.is(ok(tsbuildAs(user, ['run', '--rm', 'bg:2', 'cat', '/tmp/state'])).stdout, 'up\n');
    ok(tsbuildAs(user, ['stop', '-t', '1', 'bg']));
    ok(tsbuildAs(user, ['commit', 'bg', 'bg:3']));
  } finally {
    ok(tsbuildAs(user, ['rm', '-f', 'bg']));
  }
  assert.not.match(ok(tsbuildAs(user, ['ps', '-a'])).stdout, /\bbg\b/);
});

test('push and pull as the user, credentials from ~/.docker/config.json: root pulls the same digest', async () => {
  if (!user) return skip('newuidmap (uidmap), setpriv and useradd are needed');
  if (!existsSync('/usr/bin/docker-registry')) return skip('docker-registry is not installed');
  let reg: TestRegistry | undefined;
  try {
    reg = await startRegistry({ auth: { user: 'bob', pass: 'pw-rootless' } });
    const ref = `${reg.host}/rootless/busybox:1`;
    ok(tsbuildAs(user, ['login', '-u', 'bob', '--password-stdin', reg.host], { input: 'pw-rootless\n' }));
    assert.ok(existsSync(join(user.home, '.docker', 'config.json')));
    ok(tsbuildAs(user, ['tag', Base, ref]));
    // The digest the push printed: the store keeps the layer uncompressed, the push sends it gzipped.
    const pushOut = ok(tsbuildAs(user, ['push', ref])).stdout;
    const pushed = /digest: (sha256:[a-f0-9]{64})/.exec(pushOut)?.[1] ?? '(none)';
    ok(tsbuildAs(user, ['rmi', ref]));
    ok(tsbuildAs(user, ['pull', ref]));
    assert.is(JSON.parse(ok(tsbuildAs(user, ['inspect', ref])).stdout).ManifestDigest, pushed);
    // Root pulls into an empty store with the same credentials (DOCKER_CONFIG) and gets the same image.
    const empty = tempDir('rl-root-pull');
    dirs.push(empty);
    ok(tsbuild(['pull', ref], { root: empty, env: { DOCKER_CONFIG: join(user.home, '.docker') } }));
    assert.is(JSON.parse(ok(tsbuild(['inspect', ref], { root: empty })).stdout).ManifestDigest, pushed);
  } finally {
    await reg?.stop();
  }
});

test('without subordinate ranges: one warning saying what fails; own-id builds work, chown 1000 fails clearly', () => {
  if (!user) return skip('newuidmap (uidmap), setpriv and useradd are needed');
  const lone = createUser({ ranges: false });
  try {
    const info = JSON.parse(ok(tsbuildAs(lone, ['info', '--format', 'json'])).stdout);
    assert.is(info.idMapping, 'single');
    const base = tsbuildAs(lone, ['build', '-q', '-t', Base, join(lone.checkout, 'fixtures', 'busybox')], {
      env: SDE,
    });
    ok(base);
    assert.is(base.stderr.match(/single id mapping/g)?.length ?? 0, 1, base.stderr);
    assert.match(base.stderr, `${lone.name}:100000:65536`);
    const good = userContext(lone, 'own', { Dockerfile: `FROM ${Base}\nRUN echo hi > /f\n` });
    ok(tsbuildAs(lone, ['build', '-q', good], { env: SDE }));
    const bad = userContext(lone, 'chown', { Dockerfile: `FROM ${Base}\nRUN echo hi > /f && chown 1000 /f\n` });
    const r = tsbuildAs(lone, ['build', bad]);
    assert.is.not(r.code, 0);
    assert.match(r.stderr, /Dockerfile:2/);
    assert.match(r.stderr, /chown/);
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    removeUser(lone);
  }
});

// The security tables, run by uvu as the user in the namespace bin/tsbuild makes (the same launcher
// mode): the sandbox's breakout table, and the hostile Dockerfiles through the CLI.
const securityTables: [string, string, number][] = [
  ['packages/sandbox/dist/test', 'isolation', 15],
  ['test/dist', 'hostile-dockerfiles', 25],
  // Freezing without a cgroup (SIGSTOP of the sandbox's processes): a loop forking mv stops counting.
  ['packages/sandbox/dist/test', 'freeze', 2],
];
for (const [dir, file, min] of securityTables) {
  test(`the ${file} table passes rootless, run as the user`, () => {
    if (!user) return skip('newuidmap (uidmap), setpriv and useradd are needed');
    const launcher = join(user.checkout, 'packages', 'sandbox', 'native', 'build', 'tsbuild-launcher');
    const uvu = join(user.checkout, 'node_modules', 'uvu', 'bin.js');
    const probe = ok(runAs(user, [launcher, 'userns', 'cat', '/proc/self/uid_map']));
    assert.match(probe.stdout, new RegExp(`^\\s*0\\s+${user.uid}\\s+1$`, 'm'));
    const r = runAs(user, [launcher, 'userns', 'node', uvu, join(user.checkout, dir), `^${file}\\.test\\.js$`], {
      env: { NO_COLOR: '1', FORCE_COLOR: '0' },
    });
    const total = Number(/Total:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0);
    const passed = Number(/Passed:\s+(\d+)/.exec(r.stdout)?.[1] ?? -1);
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.ok(total >= min, `ran ${total} rows\n${r.stdout}`);
    assert.is(passed, total, r.stdout);
  });
}

test.run();
