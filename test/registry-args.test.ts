// What the registry-facing commands make of their arguments before any registry is reached: a credential
// in a registry name or reference is refused and never printed; a -t with a digest is refused as docker
// refuses it; login and logout name the registry as docker normalises it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, command, context, tempDirs, tsbuild } from './helpers/cli.js';

const { temp, dirs } = tempDirs();
const ctx = context({ Dockerfile: 'FROM scratch\nCOPY Dockerfile /\n' });
dirs.push(ctx);
const digest = `sha256:${'0'.repeat(64)}`;

test('a credential (user:password@) in a registry or reference: exit 2 naming the argument, never the password', () => {
  const root = temp('store-creds');
  const env = { DOCKER_CONFIG: temp('docker-config-creds') };
  const host = 'alice:s3cr3t@127.0.0.1:1';
  assert.is(tsbuild(['build', '-q', '-t', 'src:1', ctx], { root }).code, 0);
  const cases: { args: string[]; names: RegExp; other?: boolean }[] = [
    { args: ['login', '-u', 'a', '-p', 'b', host], names: /login: REGISTRY "\*\*\*@127\.0\.0\.1:1"/ },
    {
      args: ['login', '-u', 'a', '-p', 'b', `http://${host}/`],
      names: /login: REGISTRY "http:\/\/\*\*\*@127\.0\.0\.1:1\/"/,
    },
    { args: ['logout', host], names: /logout: REGISTRY "\*\*\*@127\.0\.0\.1:1"/ },
    { args: ['pull', `${host}/x`], names: /pull: invalid reference "\*\*\*@127\.0\.0\.1:1\/x"/ },
    // A password with / and @ in it.
    { args: ['pull', 'alice:s3cr3t/@x@127.0.0.1:1/x'], names: /pull: invalid reference "\*\*\*@127\.0\.0\.1:1\/x"/ },
    { args: ['push', `${host}/x:1`], names: /push: invalid reference "\*\*\*@127\.0\.0\.1:1\/x:1"/ },
    { args: ['tag', 'src:1', `${host}/x`], names: /invalid reference "\*\*\*@127\.0\.0\.1:1\/x"/ },
    { args: ['build', '-q', '-t', `${host}/x`, ctx], names: /-t \*\*\*@127\.0\.0\.1:1\/x: / },
    { args: ['build', '-q', '--push', '-t', `http://${host}/x`, ctx], names: /-t http:\/\/\*\*\*@127\.0\.0\.1:1\/x: / },
    {
      args: ['build', '-q', '--cache-to', `type=registry,ref=${host}/c`, ctx],
      names: /--cache-to type=registry,ref=\*\*\*@127\.0\.0\.1:1\/c: /,
    },
    {
      args: ['build', '-q', '--cache-from', `type=registry,ref=${host}/c`, ctx],
      names: /--cache-from type=registry,ref=\*\*\*@127\.0\.0\.1:1\/c: /,
    },
    // Refused for another reason: the value the error quotes still has no password.
    {
      args: ['build', '-q', '--output', `type=registry,name=${host}/x`, ctx],
      names: /--output type=registry,name=\*\*\*@127\.0\.0\.1:1\/x: /,
      other: true,
    },
  ];
  for (const c of cases) {
    const r = tsbuild(c.args, { root, env });
    const what = c.args.join(' ');
    assert.is(r.code, 2, `${what}\n${r.stderr}`);
    assert.not.match(r.stdout + r.stderr, /s3cr3t/, what);
    assert.match(r.stderr, c.names, `${what}\n${r.stderr}`);
    if (!c.other) assert.match(r.stderr, /credentials/, `${what}\n${r.stderr}`);
  }
});

test('build -t with a digest: exit 2 naming -t and the value, before anything is built', () => {
  const root = temp('store-digest-tag');
  const cases: { args: string[]; names: RegExp }[] = [
    { args: ['-t', `x@${digest}`], names: /-t x@sha256:0{64}: refusing to create a tag with a digest reference/ },
    { args: ['-t', 'ok:1', '-t', `x:1@${digest}`], names: /-t x:1@sha256:0{64}: refusing to create a tag/ },
    {
      args: ['--push', '-t', `127.0.0.1:1/x@${digest}`],
      names: /-t 127\.0\.0\.1:1\/x@sha256:0{64}: refusing to create a tag/,
    },
  ];
  for (const c of cases) {
    const r = tsbuild(['build', '-q', ...c.args, ctx], { root });
    const what = c.args.join(' ');
    assert.is(r.code, 2, `${what}\n${r.stderr}`);
    assert.match(r.stderr, c.names, `${what}\n${r.stderr}`);
  }
  // Refused before the build: no image, no tag.
  assert.is(tsbuild(['images', '-q'], { root }).stdout, '');
  assert.not.ok(readdirSync(root).includes('blobs') && readdirSync(join(root, 'blobs', 'sha256')).length);
});

test('logout names the registry as docker normalises it', () => {
  const env = { DOCKER_CONFIG: temp('docker-config-logout') };
  const cases: { args: string[]; host: string }[] = [
    { args: ['http://nothere.example:5000/'], host: 'nothere.example:5000' },
    { args: ['https://Foo.example:5000/v2/x'], host: 'Foo.example:5000' },
    { args: ['localhost:5000/a/b'], host: 'localhost:5000' },
    { args: ['index.docker.io'], host: 'index.docker.io' },
    { args: [''], host: 'https://index.docker.io/v1/' },
    { args: [], host: 'https://index.docker.io/v1/' },
  ];
  for (const c of cases) {
    const r = tsbuild(['logout', ...c.args], { env });
    assert.is(r.code, 0, `${c.args.join(' ')}\n${r.stderr}`);
    assert.is(r.stdout, `Removing login credentials for ${c.host}\n`);
  }
});

test('login to an empty registry name is a login to docker.io, and a failure says so', () => {
  // In a network namespace of its own, with no network: the login fails at once, offline, and the test
  // sends nothing to Docker Hub.
  const r = spawnSync('unshare', ['-n', command, 'login', '-u', 'alice', '-p', 'not-a-real-password', ''], {
    encoding: 'utf8',
    env: { ...process.env, CI: 'true', DOCKER_CONFIG: temp('docker-config-login') },
  });
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stderr, /login to docker\.io failed: /);
  assert.not.match(r.stdout + r.stderr, /not-a-real-password/);
});

test.after(() => cleanup(...dirs));
test.run();
