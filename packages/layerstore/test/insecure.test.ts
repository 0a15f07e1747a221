// Insecure registries as docker's daemon has them: which values --insecure-registry takes, which
// registries they (and loopback) cover, and what "insecure" does to a client's requests: HTTPS
// without verifying the certificate — the token fetch too — then plain HTTP when the server does
// not speak TLS, decided once per registry in a process. Fake registries (node servers) on
// 127.0.0.2, 127.0.0.3 and a local non-loopback address, with a self-signed certificate.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { outsideAddress, selfSignedCertificate, skip } from '@tsbuild/testkit';
import { checkInsecureRegistry, isInsecureRegistry } from '../src/remote/insecure.js';
import { RegistryClient } from '../src/remote/client.js';
import { noCredentials, StaticCredentials } from '../src/remote/credentials.js';

const valueCases: { value: string; entry?: string; warning?: RegExp; error?: string }[] = [
  { value: 'registry.example:5000', entry: 'registry.example:5000' },
  { value: 'registry.example', entry: 'registry.example' },
  { value: '192.0.2.7:5000', entry: '192.0.2.7:5000' },
  { value: '10.0.0.0/8', entry: '10.0.0.0/8' },
  { value: 'fd00::/8', entry: 'fd00::/8' },
  { value: '[fd00::1]:5000', entry: '[fd00::1]:5000' },
  { value: 'http://x', entry: 'x', warning: /should not contain 'http:\/\/'/ },
  { value: 'HTTPS://x:5000', entry: 'x:5000', warning: /should not contain 'https:\/\/'/ },
  { value: '', error: 'invalid host ""' },
  { value: 'ftp://x', error: "should not contain '://'" },
  { value: 'x:99999', error: 'invalid port "99999"' },
  { value: 'x:port', error: 'invalid host "x"' },
  { value: '127.0.0.1:port', error: 'invalid port "port"' },
  { value: 'a_b', error: 'invalid host "a_b"' },
  { value: 'host:5000/path', error: 'invalid host "host"' },
  { value: '-x', error: 'invalid index name (-x). Cannot begin or end with a hyphen' },
  { value: 'x-', error: 'invalid index name (x-). Cannot begin or end with a hyphen' },
];
for (const c of valueCases)
  test(`--insecure-registry "${c.value}" → ${c.error ?? c.entry}`, () => {
    if (c.error) {
      assert.throws(
        () => checkInsecureRegistry(c.value),
        (e: Error) => e.message === c.error,
      );
      return;
    }
    const r = checkInsecureRegistry(c.value);
    assert.is(r.entry, c.entry);
    if (c.warning) assert.match(r.warning ?? '', c.warning);
    else assert.is(r.warning, undefined);
  });

const matchCases: { host: string; insecure: string[]; is: boolean }[] = [
  // Loopback: docker's default 127.0.0.0/8, and localhost (which resolves there).
  { host: '127.0.0.1:5000', insecure: [], is: true },
  { host: '127.0.0.2:5000', insecure: [], is: true },
  { host: '127.255.0.9', insecure: [], is: true },
  { host: 'localhost:5000', insecure: [], is: true },
  { host: 'localhost', insecure: [], is: true },
  { host: 'reg.localhost:5000', insecure: [], is: true },
  { host: '[::1]:5000', insecure: [], is: true },
  { host: '128.0.0.1:5000', insecure: [], is: false },
  { host: '127.0.0.1.example:5000', insecure: [], is: false },
  { host: 'registry-1.docker.io', insecure: [], is: false },
  // Names: host:port as given, or a host for any of its ports.
  { host: 'reg.example:5000', insecure: ['reg.example:5000'], is: true },
  { host: 'reg.example:5001', insecure: ['reg.example:5000'], is: false },
  { host: 'reg.example:5000', insecure: ['reg.example'], is: true },
  { host: 'reg.example', insecure: ['reg.example:5000'], is: false },
  { host: 'other.example:5000', insecure: ['reg.example'], is: false },
  // CIDRs: against an IP literal only (no name is looked up).
  { host: '10.1.2.3:5000', insecure: ['10.0.0.0/8'], is: true },
  { host: '11.1.2.3:5000', insecure: ['10.0.0.0/8'], is: false },
  { host: '192.0.2.7', insecure: ['192.0.2.0/24'], is: true },
  { host: 'reg.example:5000', insecure: ['10.0.0.0/8'], is: false },
  { host: '[fd00::5]:5000', insecure: ['fd00::/8'], is: true },
  { host: '[fe80::5]:5000', insecure: ['fd00::/8'], is: false },
  { host: '10.1.2.3:5000', insecure: ['fd00::/8'], is: false },
];
for (const c of matchCases)
  test(`${c.host} with [${c.insecure.join(' ')}] → ${c.is ? 'insecure' : 'secure'}`, () => {
    assert.is(isInsecureRegistry(c.host, c.insecure), c.is);
  });

// Fake registries: /v2/ wants a bearer token from the realm /token on the same server.
const certs = mkdtempSync(path.join(os.tmpdir(), 'tsbuild-insecure-'));
const outside = outsideAddress();
let tlsAttempts = 0;
let unauthenticated = 0; // GET /v2/ without a token: each client's first ping, and the scheme probe
const servers: net.Server[] = [];
function handler(scheme: string, host: () => string) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url?.startsWith('/token')) return void res.end(JSON.stringify({ token: 'tok' }));
    if (req.headers.authorization !== 'Bearer tok') {
      if (req.url === '/v2/') unauthenticated++;
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="${scheme}://${host()}/token",service="fake"`,
        'docker-distribution-api-version': 'registry/2.0',
      });
      return void res.end();
    }
    res.end('{}');
  };
}
async function serve(kind: 'https' | 'http', address: string, port = 0): Promise<string> {
  let host = '';
  const s =
    kind === 'https'
      ? https.createServer(
          { key: readFileSync(path.join(certs, 'key.pem')), cert: readFileSync(path.join(certs, 'cert.pem')) },
          handler('https', () => host),
        )
      : http.createServer(handler('http', () => host));
  // Counts the TLS handshakes a plain-HTTP server is offered (a ClientHello starts with 0x16).
  if (kind === 'http')
    s.on('connection', (c: net.Socket) => c.once('data', (b: Buffer) => b[0] === 0x16 && tlsAttempts++));
  servers.push(s);
  await new Promise<void>((r) => s.listen(port, address, r));
  host = `${address}:${(s.address() as net.AddressInfo).port}`;
  return host;
}

const hosts: Record<string, string> = {};
test.before(async () => {
  selfSignedCertificate(certs, ['127.0.0.2', ...(outside ? [outside] : [])]);
  hosts.tls127 = await serve('https', '127.0.0.2');
  hosts.plain127 = await serve('http', '127.0.0.3');
  if (outside) {
    hosts.tlsOutside = await serve('https', outside);
    hosts.plainOutside = await serve('http', outside);
  }
});
test.after(() => {
  for (const s of servers) s.close();
  rmSync(certs, { recursive: true, force: true });
});

const retry = { attempts: 1 };
const pingCases: { name: string; host: string; insecure: (h: string) => string[]; error?: RegExp }[] = [
  { name: 'self-signed HTTPS on 127.0.0.2 (token over HTTPS too)', host: 'tls127', insecure: () => [] },
  { name: 'plain HTTP on 127.0.0.3', host: 'plain127', insecure: () => [] },
  { name: 'self-signed HTTPS, flagged', host: 'tlsOutside', insecure: (h) => [h] },
  { name: 'self-signed HTTPS, flagged by CIDR', host: 'tlsOutside', insecure: (h) => [`${h.split(':')[0]}/32`] },
  { name: 'plain HTTP, flagged', host: 'plainOutside', insecure: (h) => [h] },
  { name: 'self-signed HTTPS, not flagged', host: 'tlsOutside', insecure: () => [], error: /TLS certificate rejected/ },
  {
    name: 'plain HTTP, not flagged',
    host: 'plainOutside',
    insecure: () => [],
    error: /answered in plain HTTP \(--insecure-registry /,
  },
];
for (const c of pingCases)
  test(`ping with a bearer token: ${c.name} → ${c.error ? 'refused' : 'works'}`, async () => {
    const host = hosts[c.host];
    if (!host) return skip('no local non-loopback IPv4 address', { required: false });
    const client = new RegistryClient(host, { credentials: noCredentials, insecure: c.insecure(host), retry });
    if (!c.error) return void (await client.ping());
    await client.ping().then(
      () => assert.unreachable('pinged'),
      (e: Error) => assert.match(e.message, c.error!),
    );
  });

test('plain HTTP is found once per registry in a process, by a plain GET /v2/ with no TLS handshake', async () => {
  const host = await serve('http', '127.0.0.3');
  const [tls, gets] = [tlsAttempts, unauthenticated];
  for (let i = 0; i < 3; i++) await new RegistryClient(host, { credentials: noCredentials, retry }).ping();
  assert.is(tlsAttempts - tls, 0, 'a registry that answers plain HTTP is offered no TLS handshake');
  assert.is(unauthenticated - gets, 3 + 1, "three clients' pings and one probe");
});

// Named without a port, a registry's two schemes are two ports: what answers plain HTTP on 80 (here a web server
// redirecting to HTTPS, a common setup) says nothing of the registry on 443, which is spoken to over TLS, and
// port 80 never sees the credentials (an HTTP-first probe took the 301 for "speaks HTTP" and sent them there).
test('no port: a web server on 80 does not make the registry on 443 plain HTTP, nor get its credentials', async () => {
  const address = '127.0.0.4';
  const seenOn80: string[] = [];
  const web = http.createServer((req, res) => {
    seenOn80.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`);
    res.writeHead(301, { location: `https://${address}${req.url}` }).end();
  });
  servers.push(web);
  const bound = await new Promise<boolean>((r) => {
    web.once('error', () => r(false));
    web.listen(80, address, () => r(true));
  });
  if (!bound) return skip('port 80 on 127.0.0.4 is taken', { required: false });
  await serve('https', address, 443);
  const credentials = new StaticCredentials({ [address]: { username: 'u', password: 'secret' } });
  const client = new RegistryClient(address, { credentials, retry });
  await client.ping();
  assert.is(client.base.protocol, 'https:');
  assert.ok(!seenOn80.some((l) => l.includes('Basic') || l.includes('Bearer')), seenOn80.join('\n'));
});

// An insecure registry's own redirect to plain HTTP on its host (the same host, another scheme: port 80) is
// followed, as docker follows it, but without the credentials: they were for the registry over HTTPS.
test('a redirect from an insecure HTTPS registry to plain HTTP on its host carries no credentials', async () => {
  const address = '127.0.0.5';
  const seenOn80: string[] = [];
  const web = http.createServer((req, res) => {
    seenOn80.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`);
    res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' }).end('{}');
  });
  servers.push(web);
  const bound = await new Promise<boolean>((r) => {
    web.once('error', () => r(false));
    web.listen(80, address, () => r(true));
  });
  if (!bound) return skip('port 80 on 127.0.0.5 is taken', { required: false });
  const tls = https.createServer(
    { key: readFileSync(path.join(certs, 'key.pem')), cert: readFileSync(path.join(certs, 'cert.pem')) },
    (req, res) => {
      if (!req.headers.authorization?.startsWith('Basic '))
        return void res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' }).end();
      res.writeHead(307, { location: `http://${address}/elsewhere${req.url}` }).end();
    },
  );
  servers.push(tls);
  await new Promise<void>((r) => tls.listen(443, address, r));
  const credentials = new StaticCredentials({ [address]: { username: 'u', password: 'secret' } });
  const client = new RegistryClient(address, { credentials, retry });
  const res = await client.request(
    { method: 'GET', url: '/v2/x/manifests/1', scopes: [], redirects: true },
    'the manifest',
  );
  res.body.resume();
  assert.ok(seenOn80.length > 0, 'the redirect was followed');
  assert.ok(!seenOn80.some((l) => l.includes('Basic') || l.includes('Bearer')), seenOn80.join('\n'));
});

test.run();
