// ADD of an http URL from a server on 127.0.0.1: the file lands with mode 0600 (as docker),
// --checksum is verified, a redirect is followed (the file named after its target), and a wrong
// checksum fails the build naming both digests.
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
const server = createServer((req, res) => {
  if (req.url === '/moved') {
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

test.after(() => {
  server.close();
  cleanup(root);
});
test.run();
