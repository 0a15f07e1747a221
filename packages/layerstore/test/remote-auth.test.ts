// Credentials and authentication: a real docker-registry with htpasswd basic auth, docker
// config.json in its forms (auths, credHelpers, credsStore, identitytoken), login/logout,
// a token service (tiny node server) with expiring tokens, and redirects that must not carry
// credentials to another host.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as remote from '../src/remote/index.js';
import { RegistryClient } from '../src/remote/client.js';
import { dockerConfigPath, storeCredentials } from '../src/remote/credentials.js';
import { startRegistry, type TestRegistry } from '@tsbuild/testkit';
import { makeImage, newBlobStore, sha256, skopeo } from './helpers/registry-image.js';

const test = suite('remote: auth');
const user = 'builder';
const pass = 's3cret-Pa55';
const retry = { attempts: 2, baseDelayMs: 5, maxDelayMs: 20 };

let reg: TestRegistry;
const dirs: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(path.join(os.tmpdir(), p));
  dirs.push(d);
  return d;
};
const store = () => {
  const s = newBlobStore();
  dirs.push(s.root);
  return s;
};
const servers: http.Server[] = [];
const originalPath = process.env.PATH;

test.before(async () => {
  reg = await startRegistry({ auth: { user, pass } });
  // A credential helper: prints the credentials for our registry, "not found" otherwise.
  const bin = tmp('tsbuild-bin-');
  const script = `#!/bin/sh
read server
case "$1" in
  get)
    case "$server" in
      ${reg.host}|https://${reg.host}) printf '{"ServerURL":"%s","Username":"${user}","Secret":"${pass}"}' "$server" ;;
      *) echo "credentials not found in native keychain"; exit 1 ;;
    esac ;;
  store) echo "$server" > "$(dirname "$0")/stored" ;;
  erase) echo "$server" > "$(dirname "$0")/erased" ;;
esac
`;
  writeFileSync(path.join(bin, 'docker-credential-tstest'), script);
  chmodSync(path.join(bin, 'docker-credential-tstest'), 0o755);
  process.env.PATH = `${bin}:${originalPath}`;
});
test.after(async () => {
  process.env.PATH = originalPath;
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await reg?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function configFile(content: object): string {
  const f = path.join(tmp('tsbuild-docker-'), 'config.json');
  writeFileSync(f, JSON.stringify(content));
  return f;
}
const b64 = (s: string) => Buffer.from(s).toString('base64');

const goodConfigs: Array<[string, () => object]> = [
  ['auths[host].auth', () => ({ auths: { [reg.host]: { auth: b64(`${user}:${pass}`) } } })],
  [
    'auths["http://host"] username/password',
    () => ({ auths: { [`http://${reg.host}`]: { username: user, password: pass } } }),
  ],
  ['credHelpers[host]', () => ({ credHelpers: { [reg.host]: 'tstest' } })],
  ['credsStore', () => ({ credsStore: 'tstest', auths: {} })],
];

for (const [name, config] of goodConfigs) {
  test(`basic auth registry with credentials from config.json ${name}`, async () => {
    const { blobs } = store();
    const img = await makeImage(blobs, [20_000], 200);
    const credentials = new remote.DockerConfigCredentials(configFile(config()));
    const ref = `${reg.host}/auth/app:${name.replace(/[^a-z]/gi, '').slice(0, 20)}`;
    await remote.push(blobs, { manifestDigest: img.manifestDigest }, ref, { credentials, retry });
    const raw = await skopeo([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--creds',
      `${user}:${pass}`,
      `docker://${ref}`,
    ]);
    assert.is(sha256(raw), img.manifestDigest);
    const dst = store();
    const pulled = await remote.pull(dst.blobs, ref, { credentials, retry });
    assert.is(pulled.manifestDigest, img.manifestDigest);
  });
}

test('DOCKER_CONFIG picks the config file', async () => {
  const f = configFile({ auths: { [reg.host]: { auth: b64(`${user}:${pass}`) } } });
  const saved = process.env.DOCKER_CONFIG;
  process.env.DOCKER_CONFIG = path.dirname(f);
  try {
    assert.is(dockerConfigPath(), f);
    await new RegistryClient(reg.host, { retry }).ping();
  } finally {
    if (saved === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = saved;
  }
});

const badCases: Array<[string, () => object, RegExp]> = [
  [
    'wrong password',
    () => ({ auths: { [reg.host]: { auth: b64(`${user}:wrong`) } } }),
    /answered HTTP 401 UNAUTHORIZED.*\(credentials for "127\.0\.0\.1:\d+" were rejected\)/,
  ],
  [
    'no credentials',
    () => ({ auths: {} }),
    /requires authentication and there are no credentials for "127\.0\.0\.1:\d+"/,
  ],
  [
    'a missing helper',
    () => ({ credHelpers: { [reg.host]: 'nonexistent' } }),
    /docker-credential-nonexistent: not found on PATH/,
  ],
];
for (const [name, config, re] of badCases) {
  test(`a clear error for ${name}`, async () => {
    try {
      await remote.pull(store().blobs, `${reg.host}/auth/app:x`, {
        credentials: new remote.DockerConfigCredentials(configFile(config())),
        retry,
      });
      assert.unreachable();
    } catch (err) {
      assert.instance(err, remote.RegistryError);
      assert.match((err as Error).message, re);
      assert.match((err as Error).message, /manifest 127\.0\.0\.1:\d+\/auth\/app:x/);
      assert.not.ok(
        (err as Error).message.includes('wrong') || (err as Error).message.includes(pass),
        'no secrets in the message',
      );
    }
  });
}

test('login verifies against /v2/ and writes auths[host].auth; logout removes it', async () => {
  const f = path.join(tmp('tsbuild-docker-'), 'config.json');
  writeFileSync(f, JSON.stringify({ auths: { 'other.example': { auth: 'eDp5' } }, psFormat: 'table' }));
  try {
    await remote.login(reg.host, user, 'nope', { configFile: f, retry });
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /HTTP 401/);
  }
  assert.not.ok(JSON.parse(readFileSync(f, 'utf8')).auths[reg.host], 'nothing written for bad credentials');
  await remote.login(`http://${reg.host}/`, user, pass, { configFile: f, retry });
  const written = JSON.parse(readFileSync(f, 'utf8'));
  assert.is(written.auths[reg.host].auth, b64(`${user}:${pass}`));
  assert.is(written.psFormat, 'table', 'other settings kept');
  assert.ok(written.auths['other.example']);
  await remote.pull(store().blobs, `${reg.host}/auth/app:authshostauth`, {
    credentials: new remote.DockerConfigCredentials(f),
    retry,
  });
  await remote.logout(reg.host, { configFile: f });
  const after = JSON.parse(readFileSync(f, 'utf8'));
  assert.not.ok(after.auths[reg.host]);
  assert.ok(after.auths['other.example']);
  // Docker Hub's key.
  const h = path.join(tmp('tsbuild-docker-'), 'config.json');
  await storeCredentials('docker.io', { username: 'u', password: 'p' }, h);
  assert.equal(Object.keys(JSON.parse(readFileSync(h, 'utf8')).auths), ['https://index.docker.io/v1/']);
});

test('login through a credential helper stores there', async () => {
  const f = configFile({ credHelpers: { [reg.host]: 'tstest' } });
  await remote.login(reg.host, user, pass, { configFile: f, retry });
  const bin = process.env.PATH!.split(':')[0];
  assert.equal(JSON.parse(readFileSync(path.join(bin, 'stored'), 'utf8')), {
    ServerURL: reg.host,
    Username: user,
    Secret: pass,
  });
  await remote.logout(reg.host, { configFile: f });
  assert.ok(existsSync(path.join(bin, 'erased')));
});

// ---- a token service and a registry that trusts it (tiny node servers) ----

async function listen(handler: http.RequestListener): Promise<number> {
  const s = http.createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return (s.address() as net.AddressInfo).port;
}

test(
  'bearer tokens: scopes, basic creds at the realm, access_token, refresh after expiry mid-pull, identity ' + 'tokens',
  async () => {
    const { blobs } = store();
    const img = await makeImage(blobs, [30_000, 30_000, 30_000], 210);
    const content = new Map<string, Buffer>();
    for (const d of [img.config.digest, ...img.layers.map((l) => l.digest)]) content.set(d, await blobs.read(d));
    let current = 0;
    let served = 0;
    const tokenRequests: Array<{ method: string; scope: string[]; auth?: string; body?: string }> = [];
    const tokenPort = await listen((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        const u = new URL(req.url!, 'http://x');
        const form = new URLSearchParams(body);
        tokenRequests.push({
          method: req.method!,
          scope: req.method === 'POST' ? (form.get('scope') ?? '').split(' ') : u.searchParams.getAll('scope'),
          auth: req.headers.authorization,
          body,
        });
        const basicOK = req.headers.authorization === `Basic ${b64(`${user}:${pass}`)}`;
        const refreshOK = form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === 'refresh-me';
        if (!basicOK && !refreshOK) {
          res.writeHead(401);
          res.end('{"errors":[{"code":"UNAUTHORIZED","message":"bad creds"}]}');
          return;
        }
        current++;
        res.writeHead(200, { 'content-type': 'application/json' });
        // Alternate the field name: both are in use.
        res.end(
          JSON.stringify(
            current % 2
              ? { token: `tok-${current}`, expires_in: 300 }
              : { access_token: `tok-${current}`, expires_in: 300 },
          ),
        );
      });
    });
    const regPort = await listen((req, res) => {
      const challenge =
        `Bearer realm="http://127.0.0.1:${tokenPort}/token",` + 'service="fake-registry",scope="repository:app:pull"';
      // Every 3 requests the server revokes the current token, as an expiry mid-pull would.
      if (req.headers.authorization !== `Bearer tok-${current}` || (++served % 3 === 0 && current++ >= 0)) {
        res.writeHead(401, { 'www-authenticate': challenge, 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}');
        return;
      }
      const m = /^\/v2\/app\/(manifests|blobs)\/(.+)$/.exec(req.url!);
      if (m && m[1] === 'manifests') {
        res.writeHead(200, { 'content-type': img.manifest.mediaType!, 'docker-content-digest': img.manifestDigest });
        res.end(img.manifestBytes);
      } else if (m && content.has(m[2])) {
        res.writeHead(200, { 'content-length': content.get(m[2])!.length });
        res.end(content.get(m[2]));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    const ref = `127.0.0.1:${regPort}/app:1`;
    const cases: Array<[string, remote.Credential]> = [
      ['password', { username: user, password: pass }],
      ['identity token', { identityToken: 'refresh-me' }],
    ];
    for (const [name, cred] of cases) {
      tokenRequests.length = 0;
      const credentials = new remote.StaticCredentials({ [`127.0.0.1:${regPort}`]: cred });
      const pulled = await remote.pull(store().blobs, ref, { credentials, retry, concurrency: 1 });
      assert.is(pulled.manifestDigest, img.manifestDigest, name);
      assert.ok(
        tokenRequests.length >= 2,
        `${name}: re-authenticated after the token was revoked (${tokenRequests.length} token requests)`,
      );
      assert.ok(
        tokenRequests.every((t) => t.scope.includes('repository:app:pull')),
        `${name}: asked for the pull scope`,
      );
      if (cred.identityToken)
        assert.ok(tokenRequests.every((t) => t.method === 'POST' && t.body!.includes('grant_type=refresh_token')));
      else assert.ok(tokenRequests.every((t) => t.method === 'GET' && t.auth?.startsWith('Basic ')));
    }
    try {
      await remote.pull(store().blobs, ref, {
        credentials: new remote.StaticCredentials({ [`127.0.0.1:${regPort}`]: { username: user, password: 'bad' } }),
        retry,
      });
      assert.unreachable();
    } catch (err) {
      assert.match(
        (err as Error).message,
        new RegExp(
          `token service 127\\.0\\.0\\.1:${tokenPort} for 127\\.0\\.0\\.1:${regPort} answered HTTP 401: ` +
            `UNAUTHORIZED: bad creds`,
        ),
      );
    }
  },
);

test('credentials are never sent to another host on a redirect (but are to the same host)', async () => {
  const payload = Buffer.from('blob bytes served by the storage host');
  const digest = sha256(payload);
  const seenByStorage: Array<string | undefined> = [];
  const storagePort = await listen((req, res) => {
    seenByStorage.push(req.headers.authorization);
    res.writeHead(200, { 'content-length': payload.length });
    res.end(payload);
  });
  const seenByRegistry: Array<[string, string | undefined]> = [];
  const regPort = await listen((req, res) => {
    seenByRegistry.push([req.url!, req.headers.authorization]);
    if (req.headers.authorization !== `Basic ${b64(`${user}:${pass}`)}`) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' });
      res.end();
      return;
    }
    if (req.url === `/v2/app/blobs/${digest}`) {
      res.writeHead(307, { location: `/storage/${digest}` }); // same host
    } else if (req.url === `/storage/${digest}`) {
      // A different host: localhost vs 127.0.0.1, and another port.
      res.writeHead(307, { location: `http://localhost:${storagePort}/bucket/${digest}?X-Signature=secret` });
    } else res.writeHead(404);
    res.end();
  });
  const { blobs } = store();
  const stats = await remote.fetchBlobs(
    blobs,
    `127.0.0.1:${regPort}/app`,
    [{ mediaType: 'application/octet-stream', digest, size: payload.length }],
    {
      credentials: new remote.StaticCredentials({ [`127.0.0.1:${regPort}`]: { username: user, password: pass } }),
      retry,
    },
  );
  assert.is(stats.blobsDownloaded, 1);
  assert.equal(seenByStorage, [undefined], 'the storage host got no Authorization');
  assert.ok(
    seenByRegistry.some(([u, a]) => u.startsWith('/storage/') && a?.startsWith('Basic ')),
    'same-host redirect kept credentials',
  );
  assert.equal((await blobs.read(digest)).toString(), payload.toString());
});

test('untrusted answers: a manifest whose digest does not match is refused', async () => {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 2 },
      layers: [],
    }),
  );
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    [`@sha256:${'b'.repeat(64)}`, {}, /content has digest sha256:/],
    [':1', { 'docker-content-digest': `sha256:${'c'.repeat(64)}` }, /Docker-Content-Digest sha256:c+ does not match/],
  ];
  const port = await listen((req, res) => {
    if (req.url === '/v2/') return void res.writeHead(200).end(); // the plain-HTTP probe of a loopback registry
    const c = cases.find(([r]) => req.url!.endsWith(r.slice(1)))!;
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', ...c[1] });
    res.end(bytes);
  });
  for (const [r, , re] of cases) {
    try {
      await remote.resolve(`127.0.0.1:${port}/app${r}`, { credentials: remote.noCredentials, retry });
      assert.unreachable();
    } catch (err) {
      assert.match((err as Error).message, re);
    }
  }
});

test.run();
