// Ctrl-C during `push` and `pull` stops the transfer: exit 130, "tsbuild: stopped", and no digest line
// saying it went through. A proxy in front of a real registry holds the requests that carry blobs; once
// tsbuild has said it is stopping (its own stderr, the deterministic signal), the proxy lets them through,
// so a command that did not stop goes on to finish, and says so.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '@tsbuild/testkit';
import { Base, cleanup, ok, storeWithBase, tempDirs, tsbuild, tsbuildAsync } from './helpers/cli.js';

const { temp, dirs } = tempDirs();
let reg: TestRegistry;
let storeA: string;

/** Forwards everything to `target`; requests `hold` picks wait until release(). */
function holdingProxy(target: number, hold: (req: http.IncomingMessage) => boolean) {
  const waiting: (() => void)[] = [];
  let released = false;
  let onHeld: () => void = () => {};
  const held = new Promise<void>((r) => (onHeld = r));
  const server = http.createServer((req, res) => {
    const forward = () => {
      const up = http.request(
        { host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      res.on('error', () => up.destroy());
      req.pipe(up);
    };
    if (!released && hold(req)) {
      waiting.push(forward);
      onHeld();
    } else forward();
  });
  const listening = new Promise<number>((r) =>
    server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)),
  );
  return {
    listening,
    held,
    release: () => {
      released = true;
      for (const go of waiting.splice(0)) go();
    },
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

test.before(async () => {
  reg = await startRegistry();
  storeA = storeWithBase(temp('store'));
  ok(tsbuild(['tag', Base, `${reg.host}/pulled:1`], { root: storeA }));
  ok(tsbuild(['push', `${reg.host}/pulled:1`], { root: storeA }), 'pushing the image the pull case fetches');
});
test.after(async () => {
  await reg?.stop();
  cleanup(...dirs);
});

const cases: {
  name: string;
  hold: (req: http.IncomingMessage) => boolean;
  args: (proxy: string) => string[];
  /** The store the command runs in (the pull's is empty). */
  root: () => string;
}[] = [
  {
    name: 'push, while its first blob upload waits',
    hold: (req) => req.method === 'POST' && /\/blobs\/uploads\//.test(req.url ?? ''),
    args: (proxy) => ['push', '--progress=plain', `${proxy}/pushed:1`],
    root: () => storeA,
  },
  {
    name: 'pull, while its blobs are on their way',
    hold: (req) => req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? ''),
    args: (proxy) => ['pull', '--progress=plain', `${proxy}/pulled:1`],
    root: () => temp('empty-store'),
  },
];

for (const c of cases) {
  test(`Ctrl-C during ${c.name}: stopped, exit 130, no digest printed, nothing left in the store's tmp/`, async () => {
    const proxy = holdingProxy(reg.port, c.hold);
    const root = c.root();
    const args = c.args(`127.0.0.1:${await proxy.listening}`);
    if (args[0] === 'push') ok(tsbuild(['tag', Base, args[2]], { root }));
    try {
      const child = tsbuildAsync(args, { root });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (b: string) => (stdout += b));
      child.stderr.setEncoding('utf8').on('data', (b: string) => {
        stderr += b;
        // Let the held requests go once tsbuild has heard the Ctrl-C: a command that ignores it finishes.
        if (stderr.includes('stopping...')) proxy.release();
      });
      const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      await proxy.held;
      child.kill('SIGINT');
      const code = await exited;
      assert.is(code, 130, `${stdout}\n${stderr}`);
      assert.match(stderr, /tsbuild: stopped\n$/, stderr);
      assert.not.match(stdout, /digest/i, 'no digest line: the transfer did not go through');
      assert.equal(readdirSync(join(root, 'tmp')), [], "nothing left in the store's tmp/");
    } finally {
      proxy.release();
      await proxy.close();
    }
  });
}

test.run();
