// A real CNCF distribution registry (Debian's docker-registry) on 127.0.0.1 for tests:
// free port, temp storage, optional htpasswd basic auth, optionally HTTPS (its own certificate)
// on another local address; waits for /v2/ and is killed on stop() or process exit.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

export interface TestRegistry {
  /** ADDRESS:PORT (127.0.0.1 unless another address was asked for) */
  host: string;
  port: number;
  dir: string;
  auth?: { user: string; pass: string };
  /** Registry's stderr (logs), for failure messages. */
  logs(): string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export function freePort(address = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, address, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** GET /v2/: the status, and whether the answer carries this registry's token (another server may hold the port). */
function probe(address: string, port: number, tls: boolean, token: string): Promise<{ status: number; ours: boolean }> {
  return new Promise((resolve) => {
    // Whether the certificate verifies is the tests' business, not the start-up's.
    const get = tls ? https.get : http.get;
    const req = get({ host: address, port, path: '/v2/', agent: false, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, ours: res.headers['x-tsbuild-registry'] === token });
    });
    req.on('error', () => resolve({ status: 0, ours: false }));
    req.setTimeout(1000, () => req.destroy());
  });
}

export async function startRegistry(
  opts: {
    auth?: { user: string; pass: string };
    /** Serve HTTPS with this certificate and key (PEM files) instead of plain HTTP. */
    tls?: { certificate: string; key: string };
    /** The local address to listen on (default 127.0.0.1). */
    address?: string;
  } = {},
): Promise<TestRegistry> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsbuild-registry-'));
  const address = opts.address ?? '127.0.0.1';
  const tlsYaml = opts.tls ? `  tls:\n    certificate: ${opts.tls.certificate}\n    key: ${opts.tls.key}\n` : '';
  for (let attempt = 0; attempt < 3; attempt++) {
    // freePort() only finds a port that was free a moment ago: another process (a test file running beside
    // this one) may take it first, and then this registry fails to bind while the probe reaches the other
    // server. Every answer of this registry carries a token of its own, and only that answer counts.
    const port = await freePort(address);
    const token = randomBytes(8).toString('hex');
    let authYaml = '';
    if (opts.auth) {
      const line = execFileSync('htpasswd', ['-Bbn', opts.auth.user, opts.auth.pass], { encoding: 'utf8' });
      writeFileSync(path.join(dir, 'htpasswd'), line);
      authYaml = `auth:\n  htpasswd:\n    realm: tsbuild-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
    }
    const config = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${path.join(dir, 'data')}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: ${address}:${port}
  secret: tsbuild-test-secret
  headers:
    X-Tsbuild-Registry: [${token}]
${tlsYaml}${authYaml}`;
    const configPath = path.join(dir, 'config.yml');
    writeFileSync(configPath, config);
    const child = spawn('/usr/bin/docker-registry', ['serve', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(child);
    let log = '';
    child.stderr.on('data', (b) => {
      if (log.length < 200_000) log += b;
    });
    let exited = false;
    child.on('exit', () => {
      exited = true;
      live.delete(child);
    });
    const deadline = Date.now() + 10_000;
    let up = false;
    while (Date.now() < deadline && !exited) {
      const { status, ours } = await probe(address, port, opts.tls !== undefined, token);
      up = ours && (status === 200 || status === 401);
      if (up) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (up) {
      return {
        host: `${address}:${port}`,
        port,
        dir,
        auth: opts.auth,
        logs: () => log,
        stop: async () => {
          if (!exited) {
            const gone = new Promise((r) => child.once('exit', r));
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), 2000);
            await gone;
            clearTimeout(t);
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    child.kill('SIGKILL');
    if (attempt === 2) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start on ${address}:${port}: ${log.slice(-2000)}`);
    }
  }
  throw new Error('unreachable');
}
