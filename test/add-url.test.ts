// ADD of an http URL from a server on 127.0.0.1: the file lands with mode 0600 (as docker),
// --checksum is verified, a redirect is followed (the file named after its target), and a wrong
// checksum fails the build naming both digests. The server is untrusted: at most 10 redirects,
// and at most TSBUILD_ADD_MAX_SIZE bytes (https → http redirects: tls.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuildP } from './helpers/cli.js';

const body = 'downloaded content\n';
const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
const big = Buffer.alloc(3 * 1024 * 1024, 'b');
const server = createServer((req, res) => {
  const chain = /^\/chain\/(\d+)$/.exec(req.url ?? '');
  if (chain) {
    // /chain/N takes N more redirects to reach the file.
    const n = Number(chain[1]);
    res.writeHead(302, { location: n === 1 ? '/files/tool.txt' : `/chain/${n - 1}` });
    res.end();
  } else if (req.url === '/big' || req.url === '/big-chunked') {
    // With a Content-Length, or streamed without one (the limit is then found while reading).
    res.writeHead(200, req.url === '/big' ? { 'content-length': String(big.length) } : {});
    res.end(big);
  } else if (req.url === '/moved') {
    res.writeHead(302, { location: '/files/tool.txt' });
    res.end();
  } else if (req.url === '/files/tool.txt') {
    res.writeHead(200, { 'content-type': 'text/plain', 'last-modified': 'Tue, 14 Nov 2023 22:13:20 GMT' });
    res.end(body);
  } else {
    res.writeHead(404);
    res.end();
  }
});
const root = storeWithBase();
let base = '';

test.before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test('ADD URL with the right --checksum', async () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nADD --checksum=${digest} ${base}/files/tool.txt /opt/\n` });
  const dest = tempDir('add-url');
  ok(await tsbuildP(['build', '-o', `type=local,dest=${dest}`, ctx], { root }));
  assert.is(readFileSync(join(dest, 'opt', 'tool.txt'), 'utf8'), body);
  assert.is((lstatSync(join(dest, 'opt', 'tool.txt')).mode & 0o777).toString(8), '600');
  cleanup(ctx, dest);
});

test('ADD URL that redirects: the file is named after where it was found', async () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nADD --checksum=${digest} ${base}/moved /opt/\n` });
  const dest = tempDir('add-url');
  ok(await tsbuildP(['build', '-o', `type=local,dest=${dest}`, ctx], { root }));
  assert.is(readFileSync(join(dest, 'opt', 'tool.txt'), 'utf8'), body);
  cleanup(ctx, dest);
});

test('ADD URL with a wrong --checksum fails and names both digests', async () => {
  const wrong = `sha256:${'0'.repeat(64)}`;
  const ctx = context({ Dockerfile: `FROM ${Base}\nADD --checksum=${wrong} ${base}/files/tool.txt /opt/\n` });
  const r = await tsbuildP(['build', ctx], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /checksum mismatch/);
  assert.ok(r.stderr.includes(wrong) && r.stderr.includes(digest));
  cleanup(ctx);
});

test('ADD URL that is not found fails with the HTTP status', async () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nADD ${base}/missing /x\n` });
  const r = await tsbuildP(['build', ctx], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /HTTP 404/);
  cleanup(ctx);
});

test('ADD URL: 10 redirects are followed, an 11th is refused and the error says so', async () => {
  const okCtx = context({ Dockerfile: `FROM ${Base}\nADD --checksum=${digest} ${base}/chain/10 /opt/\n` });
  ok(await tsbuildP(['build', okCtx], { root }));
  const ctx = context({ Dockerfile: `FROM ${Base}\nADD ${base}/chain/11 /opt/\n` });
  const r = await tsbuildP(['build', ctx], { root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /Dockerfile:2.*ADD http:\/\/127\.0\.0\.1:\d+\/chain\/11: more than 10 redirects/);
  cleanup(okCtx, ctx);
});

const sizeCases = [
  { path: '/big', limit: undefined, fails: false },
  { path: '/big', limit: '1m', fails: true },
  { path: '/big-chunked', limit: '1m', fails: true },
  { path: '/big-chunked', limit: '4m', fails: false },
];
for (const c of sizeCases) {
  const limit = c.limit ?? '(default 2g)';
  test(
    `ADD URL of 3 MiB (${c.path}) with TSBUILD_ADD_MAX_SIZE=${limit}: ` + `${c.fails ? 'refused' : 'fetched'}`,
    async () => {
      const ctx = context({ Dockerfile: `FROM ${Base}\nADD ${base}${c.path} /opt/\n` });
      const env: Record<string, string> = c.limit ? { TSBUILD_ADD_MAX_SIZE: c.limit } : {};
      const r = await tsbuildP(['build', '--progress=plain', ctx], { root, env });
      if (!c.fails) {
        ok(r);
        return;
      }
      assert.is(r.code, 1);
      assert.match(r.stderr, /ADD http:\/\/127\.0\.0\.1:\d+\/big[-a-z]*: the download is larger than 1048576 bytes/);
      assert.match(r.stderr, /the limit for ADD of a URL \(raise it with TSBUILD_ADD_MAX_SIZE=SIZE/);
      assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
      cleanup(ctx);
    },
  );
}

test('TSBUILD_ADD_MAX_SIZE that is not a size is a usage error', async () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nADD ${base}/files/tool.txt /opt/\n` });
  const r = await tsbuildP(['build', '--no-cache', ctx], { root, env: { TSBUILD_ADD_MAX_SIZE: 'lots' } });
  assert.is(r.code, 2);
  assert.match(r.stderr, /TSBUILD_ADD_MAX_SIZE="lots" is not a size/);
  cleanup(ctx);
});

test.after(() => {
  server.close();
  cleanup(root);
});
test.run();
