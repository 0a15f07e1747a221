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
import * as remote from '../src/remote/index.js';

const blob = Buffer.alloc(256 * 1024, 7);
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}` as Digest;

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
    const stop = new AbortController();
    const log: string[] = [];
    const client = new RegistryClient(`127.0.0.1:${port}`, {
      credentials: remote.noCredentials,
      signal: stop.signal,
      log: (m) => log.push(m),
      retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 1 },
    });
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

test.run();
