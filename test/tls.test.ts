// TLS trust through the `tsbuild` command as users run it. Its launcher keeps NODE_EXTRA_CA_CERTS
// from Node (which would parse the file at every start) and the CLI adds those CAs itself at its
// first TLS connection: ADD of an https URL and a registry over HTTPS, each served on loopback with
// a certificate from a CA made here, must work with NODE_EXTRA_CA_CERTS naming that CA and fail
// clearly without it; the default roots must still be trusted; and the variable must look to builds
// and child processes as the user set it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';
import { cleanup, command, context, ok, repo, tempDir, tsbuild, type Result } from './helpers/cli.js';
import { inspect } from './helpers/image.js';
import { outsideAddress, skip, startRegistry, type TestRegistry } from '@tsbuild/testkit';

const certs = tempDir('tls-certs');
const pem = (name: string) => join(certs, `${name}.pem`);
const openssl = (...args: string[]) =>
  execFileSync('openssl', args, { cwd: certs, stdio: ['ignore', 'ignore', 'pipe'] });
/**
 * An address of this machine that is not loopback, for the registry: loopback registries are insecure
 * (as docker has 127.0.0.0/8), spoken to over HTTPS without verifying, so only elsewhere is the CA checked.
 */
const outside = outsideAddress();
/** A CA, and a server certificate from it for 127.0.0.1, 127.0.0.2 and the non-loopback address. */
function makeCa(name: string): { key: Buffer; cert: Buffer } {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=tsbuild test ${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
  );
  openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}-server.key`,
    '-out',
    `${name}-server.csr`,
    '-subj',
    '/CN=127.0.0.1',
  );
  writeFileSync(join(certs, 'san.ext'), `subjectAltName=IP:127.0.0.1,IP:127.0.0.2${outside ? `,IP:${outside}` : ''}\n`);
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}-server.csr`,
    '-CA',
    `${name}.pem`,
    '-CAkey',
    `${name}.key`,
    '-CAcreateserial',
    '-out',
    `${name}-server.pem`,
    '-days',
    '2',
    '-extfile',
    'san.ext',
  );
  return {
    key: readFileSync(join(certs, `${name}-server.key`)),
    cert: readFileSync(join(certs, `${name}-server.pem`)),
  };
}

const body = 'served over TLS\n';
const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
const files = (req: { url?: string }, res: import('node:http').ServerResponse) => {
  // A downgrade: an https URL redirected to plain http (to a port nothing listens on: the
  // build must refuse before connecting, and say why).
  if (req.url === '/to-http') return void res.writeHead(302, { location: 'http://127.0.0.1:9/tool.txt' }).end();
  res.writeHead(req.url === '/tool.txt' ? 200 : 404);
  res.end(req.url === '/tool.txt' ? body : '');
};
let privateServer: Server; // certificate from the CA that NODE_EXTRA_CA_CERTS names
let systemServer: Server; // certificate from a CA the test makes a default root (--use-openssl-ca)
let registryProxy: tls.Server; // TLS in front of a plain-HTTP registry, on the non-loopback address
let reg: TestRegistry;
let privateURL = '';
let systemURL = '';
let registryHost = '';
let pushedDigest = '';
const dirs: string[] = [certs];

const listen = (s: net.Server, host: string) =>
  new Promise<number>((r) => s.listen(0, host, () => r((s.address() as AddressInfo).port)));

test.before(async () => {
  const priv = makeCa('private');
  const sys = makeCa('system');
  privateServer = createServer(priv, files);
  systemServer = createServer(sys, files);
  privateURL = `https://127.0.0.1:${await listen(privateServer, '127.0.0.1')}`;
  systemURL = `https://127.0.0.1:${await listen(systemServer, '127.0.0.1')}`;
  reg = await startRegistry();
  registryProxy = tls.createServer(priv, (s) => {
    const upstream = net.connect(reg.port, '127.0.0.1');
    s.pipe(upstream).pipe(s);
    s.on('error', () => upstream.destroy());
    upstream.on('error', () => s.destroy());
  });
  if (outside) registryHost = `${outside}:${await listen(registryProxy, outside)}`;
  // An image in the registry, pushed over plain HTTP to its loopback address.
  const root = tempDir('tls-push');
  dirs.push(root);
  const ctx = context({ Dockerfile: 'FROM scratch\nCOPY a.txt /\n', 'a.txt': 'a\n' });
  dirs.push(ctx);
  ok(tsbuild(['build', '-q', '-t', `${reg.host}/tls/app:1`, ctx], { root }));
  // The digest the push printed: the store keeps the layer uncompressed, the push sends it gzipped.
  const pushed = ok(tsbuild(['push', `${reg.host}/tls/app:1`], { root }));
  pushedDigest = /digest: (sha256:[a-f0-9]{64})/.exec(pushed.stdout)?.[1] ?? '(none)';
});

test.after(async () => {
  privateServer?.close();
  systemServer?.close();
  registryProxy?.close();
  await reg?.stop();
  cleanup(...dirs);
});

/** Runs `exe args` without blocking this process, which serves the HTTPS ends. */
function run(exe: string, args: string[], env: Record<string, string | undefined>): Promise<Result> {
  const full: Record<string, string | undefined> = { ...process.env, CI: 'true', ...env };
  for (const k of Object.keys(full)) if (full[k] === undefined) delete full[k];
  return new Promise((resolve) => {
    const child = spawn(exe, args, { cwd: repo, env: full, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('close', (code) => resolve({ code: code ?? 137, stdout, stderr }));
  });
}

const addBuild = async (exe: string, url: string, env: Record<string, string | undefined>) => {
  const ctx = context({ Dockerfile: `FROM scratch\nADD --checksum=${digest} ${url}/tool.txt /opt/\n` });
  const root = tempDir('tls-store');
  const dest = tempDir('tls-out');
  dirs.push(ctx, root, dest);
  const r = await run(exe, ['build', '--progress=plain', '-o', `type=local,dest=${dest}`, ctx], {
    TSBUILD_ROOT: root,
    ...env,
  });
  return { r, dest };
};

const shim = join(repo, 'node_modules', '.bin', 'tsbuild');
const cases: {
  name: string;
  exe: string;
  url: () => string;
  env: () => Record<string, string | undefined>;
  ok: boolean;
}[] = [
  {
    name: 'private CA named by NODE_EXTRA_CA_CERTS',
    exe: command,
    url: () => privateURL,
    env: () => ({ NODE_EXTRA_CA_CERTS: pem('private') }),
    ok: true,
  },
  {
    name: "the same through pnpm's node_modules/.bin shim",
    exe: shim,
    url: () => privateURL,
    env: () => ({ NODE_EXTRA_CA_CERTS: pem('private') }),
    ok: true,
  },
  {
    name: 'private CA without NODE_EXTRA_CA_CERTS',
    exe: command,
    url: () => privateURL,
    env: () => ({ NODE_EXTRA_CA_CERTS: undefined }),
    ok: false,
  },
  {
    name: 'NODE_EXTRA_CA_CERTS naming another CA',
    exe: command,
    url: () => privateURL,
    env: () => ({ NODE_EXTRA_CA_CERTS: pem('system') }),
    ok: false,
  },
  // The extra CAs are added to the default roots, not put in their place.
  {
    name: 'a default root, with an extra CA set',
    exe: command,
    url: () => systemURL,
    env: () => ({
      NODE_OPTIONS: '--use-openssl-ca',
      SSL_CERT_FILE: pem('system'),
      NODE_EXTRA_CA_CERTS: pem('private'),
    }),
    ok: true,
  },
  {
    name: 'the extra CA, with that default root set',
    exe: command,
    url: () => privateURL,
    env: () => ({
      NODE_OPTIONS: '--use-openssl-ca',
      SSL_CERT_FILE: pem('system'),
      NODE_EXTRA_CA_CERTS: pem('private'),
    }),
    ok: true,
  },
];

for (const c of cases) {
  test(`ADD https: ${c.name} → ${c.ok ? 'fetched' : 'refused'}`, async () => {
    const { r, dest } = await addBuild(c.exe, c.url(), c.env());
    if (c.ok) {
      assert.is(r.code, 0, r.stderr);
      assert.is(readFileSync(join(dest, 'opt', 'tool.txt'), 'utf8'), body);
    } else {
      assert.is(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          String.raw`ADD https://127\.0\.0\.1:\d+/tool\.txt: TLS certificate rejected: .*` +
            String.raw`\(for a private CA, point NODE_EXTRA_CA_CERTS at its certificate\)`,
        ),
      );
      assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });
}

test('ADD https: a redirect to plain http is refused, and the error says so', async () => {
  const ctx = context({ Dockerfile: `FROM scratch\nADD ${privateURL}/to-http /opt/\n` });
  const root = tempDir('tls-store');
  dirs.push(ctx, root);
  const r = await run(command, ['build', ctx], { TSBUILD_ROOT: root, NODE_EXTRA_CA_CERTS: pem('private') });
  assert.is(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /ADD https:\/\/127\.0\.0\.1:\d+\/to-http: refusing the redirect from https:\/\/127\.0\.0\.1:\d+\/to-http /,
  );
  assert.match(r.stderr, /to http:\/\/127\.0\.0\.1:9\/tool\.txt: an https URL may not redirect to plain http/);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
});

test(
  'pull over HTTPS from a registry with a private CA: trusted through NODE_EXTRA_CA_CERTS, refused ' + 'without',
  async () => {
    if (!registryHost) return skip('no local non-loopback IPv4 address', { required: false });
    const root = tempDir('tls-pull');
    dirs.push(root);
    const refused = await run(command, ['pull', `${registryHost}/tls/app:1`], {
      TSBUILD_ROOT: root,
      NODE_EXTRA_CA_CERTS: undefined,
    });
    assert.is(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /TLS certificate rejected: .*NODE_EXTRA_CA_CERTS/);
    assert.not.match(refused.stderr, /\n\s+at /, 'no stack trace');
    const pulled = await run(command, ['pull', `${registryHost}/tls/app:1`], {
      TSBUILD_ROOT: root,
      NODE_EXTRA_CA_CERTS: pem('private'),
    });
    assert.is(pulled.code, 0, pulled.stderr);
    assert.is(inspect(root, `${registryHost}/tls/app:1`).ManifestDigest, pushedDigest);
  },
);

test(
  'Node does not read NODE_EXTRA_CA_CERTS at start-up; TLS reads it, and warns as Node does when it ' + 'cannot',
  async () => {
    const missing = join(certs, 'missing.pem');
    // `node bin/tsbuild.js` (no launcher) shows what Node does at every start.
    const direct = await run(process.execPath, [join(repo, 'packages', 'builder', 'bin', 'tsbuild.js'), '--version'], {
      NODE_EXTRA_CA_CERTS: missing,
    });
    assert.match(direct.stderr, /Ignoring extra certs from/);
    for (const exe of [command, shim]) {
      const r = await run(exe, ['--version'], { NODE_EXTRA_CA_CERTS: missing });
      assert.is(r.code, 0, r.stderr);
      assert.is(r.stderr, '', exe);
    }
    const { r } = await addBuild(command, privateURL, { NODE_EXTRA_CA_CERTS: missing });
    assert.is(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`Ignoring extra certs from \`${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\`, load failed`),
    );
    assert.match(r.stderr, /TLS certificate rejected/);
  },
);

test('builds see NODE_EXTRA_CA_CERTS as the user set it (--build-arg taken from the environment)', async () => {
  const ctx = context({ Dockerfile: 'FROM scratch\nARG NODE_EXTRA_CA_CERTS\nLABEL ca=$NODE_EXTRA_CA_CERTS\n' });
  const root = tempDir('tls-arg');
  dirs.push(ctx, root);
  const r = await run(command, ['build', '-q', '-t', 'ca:1', '--build-arg', 'NODE_EXTRA_CA_CERTS', ctx], {
    TSBUILD_ROOT: root,
    NODE_EXTRA_CA_CERTS: pem('private'),
  });
  assert.is(r.code, 0, r.stderr);
  assert.is(inspect(root, 'ca:1').ImageConfig.config.Labels.ca, pem('private'));
});

test.run();
