// A pull stopped by its signal (Ctrl-C) mid-body: the request's failure is the stop, never a broken connection
// to retry. The registry here sends half a blob and then holds the rest; the signal aborts once the first bytes
// are in the store's ingest (deterministic: the ingest's own write).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../src/index.js';
import type { BlobStore, Digest } from '../src/types.js';
import { RegistryClient } from '../src/remote/client.js';
import { fetchBlob, newStats } from '../src/remote/blob.js';
import { uploadBlob } from '../src/remote/blob-upload.js';
import * as remote from '../src/remote/index.js';

const blob = Buffer.alloc(256 * 1024, 7);
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}` as Digest;

/** A client of the registry on `port` that `stop` aborts, its log kept, retrying at once (1 ms backoff). */
function abortableClient(port: number): { stop: AbortController; log: string[]; client: RegistryClient } {
  const stop = new AbortController();
  const log: string[] = [];
  const client = new RegistryClient(`127.0.0.1:${port}`, {
    credentials: remote.noCredentials,
    signal: stop.signal,
    log: (m) => log.push(m),
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 1 },
  });
  return { stop, log, client };
}

test('a pull aborted mid-body fails with the abort at once: no retry logged, no blob, no temp file', async () => {
  const server = http.createServer((req, res) => {
    if (req.url === '/v2/') return res.writeHead(200).end();
    res.writeHead(200, { 'content-length': String(blob.length), 'docker-content-digest': digest });
    res.write(blob.subarray(0, blob.length / 2)); // the rest never comes
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const root = mkdtempSync(join(tmpdir(), 'tsbuild-remote-abort-'));
  try {
    const store = await Store.open(root);
    const { stop, log, client } = abortableClient(port);
    // The ingest's first write: the body is being read.
    const blobs: BlobStore = Object.create(store.blobs) as BlobStore;
    blobs.ingest = () => {
      const ingest = store.blobs.ingest();
      const write = ingest.write.bind(ingest);
      ingest.write = ((chunk: Buffer, ...rest: never[]) => {
        if (!stop.signal.aborted) stop.abort(new Error('stopped'));
        return write(chunk, ...rest);
      }) as typeof ingest.write;
      return ingest;
    };
    const err = await fetchBlob(
      client,
      'x/y',
      { mediaType: 'application/octet-stream', digest, size: blob.length },
      blobs,
      newStats(),
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.ok(err, 'the pull fails');
    assert.is(err!.message, 'stopped');
    assert.equal(
      log.filter((l) => l.startsWith('retry')),
      [],
      'an aborted request is not retried',
    );
    assert.is(client.stats.retries, 0);
    assert.is(await store.blobs.size(digest), undefined, 'no blob');
    assert.equal(
      readdirSync(store.tmpDir).filter((n) => n.startsWith('ingest-')),
      [],
      'no temp file',
    );
  } finally {
    server.closeAllConnections();
    server.close();
    rmSync(root, { recursive: true, force: true });
  }
});

// A chunked push stopped while the registry's 500 to a PATCH is being read: that failure is retryable, but the
// stop comes first — no backoff and no status GET to resume from, just the signal's reason.
test('a chunked push aborted on a failed chunk fails with the abort at once: no status request', async () => {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    // GET /v2/ is the probe that finds a loopback registry speaks plain HTTP (as docker, loopback is insecure).
    if (req.url === '/v2/') return res.writeHead(200).end();
    seen.push(`${req.method} ${req.url!.split('?')[0]}`);
    if (req.method === 'HEAD') return res.writeHead(404).end();
    if (req.method === 'POST') return res.writeHead(202, { location: '/v2/x/y/blobs/uploads/1' }).end();
    if (req.method === 'PATCH') {
      req.resume();
      return res.writeHead(500, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNKNOWN"}]}');
    }
    res.writeHead(204, { range: '0-0', location: '/v2/x/y/blobs/uploads/1' }).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const root = mkdtempSync(join(tmpdir(), 'tsbuild-remote-abort-'));
  try {
    const store = await Store.open(root);
    const desc = { mediaType: 'application/octet-stream', ...(await store.blobs.put(blob)) };
    const { stop, log, client } = abortableClient(port);
    // Ctrl-C while the PATCH's error answer is read (deterministic: before the client looks at it).
    let requestsAtStop = -1;
    const check = client.check.bind(client);
    client.check = (res, ...rest) => {
      if (res.status === 500 && !stop.signal.aborted) {
        requestsAtStop = client.stats.requests;
        stop.abort(new Error('stopped'));
      }
      return check(res, ...rest);
    };
    const err = await uploadBlob(client, 'x/y', desc, store.blobs, newStats(), {
      chunkThreshold: 1024,
      chunkSize: 64 * 1024,
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.ok(err, 'the push fails');
    assert.is(err!.message, 'stopped');
    assert.equal(seen, [
      'HEAD /v2/x/y/blobs/' + digest,
      'POST /v2/x/y/blobs/uploads/',
      'PATCH /v2/x/y/blobs/uploads/1',
    ]);
    assert.is(client.stats.requests, requestsAtStop, 'no status request after the stop');
    assert.equal(log, [], 'nothing resumed or retried');
  } finally {
    server.closeAllConnections();
    server.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
