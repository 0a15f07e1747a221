// A push verifies every blob it sends. UploadSource hashes the blob from offset 0 and hands out
// the piece holding its last byte only once the digest matched, so a corrupt local blob never
// reaches the registry whole: not as one PUT, not in chunks, not when the registry answers
// before the body is in, not from a store read through open().
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, closeSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as remote from '../src/remote/index.js';
import { UploadSource, type Checkpoint } from '../src/remote/upload-source.js';
import type { FileBlobStore } from '../src/blobs.js';
import { StoreError, type BlobStore, type Descriptor, type Digest } from '../src/types.js';
import type { FaultRule } from './helpers/faultproxy.js';
import { makeImage, noise } from './helpers/registry-image.js';
import { withRegistry } from './helpers/registry-suite.js';

const test = suite('remote: blobs verified on the way out');
const env = withRegistry(test);
const { store } = env;
const opts = {
  credentials: remote.noCredentials,
  retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 },
  concurrency: 1,
};

/** Flip one byte of a blob's file in place (same size, so only the hash can tell). */
function corrupt(blobs: FileBlobStore, digest: Digest, at: number): void {
  chmodSync(blobs.path(digest), 0o644); // blobs are read-only
  const fd = openSync(blobs.path(digest), 'r+');
  try {
    const b = Buffer.alloc(1);
    const pos = at < 0 ? readFileSync(blobs.path(digest)).length + at : at;
    b[0] = readFileSync(blobs.path(digest))[pos] ^ 0xff;
    writeSync(fd, b, 0, 1, pos);
  } finally {
    closeSync(fd);
  }
}

/** The same store without path(): UploadSource reads it through the verifying open() stream. */
function streamOnly(b: FileBlobStore): BlobStore {
  return {
    has: (d) => b.has(d),
    size: (d) => b.size(d),
    open: (d) => b.open(d),
    ingest: () => b.ingest(),
    put: (x) => b.put(x),
    read: (d) => b.read(d),
    readJSON: (d) => b.readJSON(d),
  };
}

async function readAll(source: UploadSource, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  try {
    for (let p = await source.take(max); p; p = await source.take(max)) parts.push(Buffer.from(p));
  } finally {
    await source.close();
  }
  return Buffer.concat(parts);
}

async function rejectsCorrupt(p: Promise<unknown>, digest: string): Promise<void> {
  try {
    await p;
    assert.unreachable('should have failed');
  } catch (err) {
    assert.instance(err, StoreError, String(err));
    assert.is((err as StoreError).code, 'corrupt');
    assert.is((err as StoreError).subject, digest);
    assert.match((err as Error).message, digest);
  }
}

async function registryHas(repo: string, digest: string): Promise<boolean> {
  const res = await fetch(`http://${env.reg.host}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  return res.status === 200;
}

const size = 3 * 1024 * 1024 + 12_345;
const blobOf = async (seed: number) => {
  const { blobs } = store();
  const data = noise(size, seed);
  const put = await blobs.put(data);
  return { blobs, data, desc: { mediaType: 'application/octet-stream', digest: put.digest, size } as Descriptor };
};

const reads: Array<{ name: string; kind: 'file' | 'stream'; start: number; max: number; checkpointAt?: number }> = [
  { name: 'file, whole, 1 MiB pieces', kind: 'file', start: 0, max: 1 << 30 },
  { name: 'stream, whole, 100 KB pieces', kind: 'stream', start: 0, max: 100_000 },
  { name: 'file, from an offset (the prefix is hashed, not handed out)', kind: 'file', start: 1_500_001, max: 1 << 30 },
  { name: 'stream, from an offset', kind: 'stream', start: 777_777, max: 300_000 },
  { name: 'file, from a checkpoint', kind: 'file', start: 2_000_000, max: 1 << 30, checkpointAt: 2_000_000 },
  { name: 'stream, from a checkpoint', kind: 'stream', start: 65_536, max: 1 << 30, checkpointAt: 65_536 },
];

for (const c of reads) {
  test(`UploadSource reads ${c.name}, and each piece is within max`, async () => {
    const { blobs, data, desc } = await blobOf(1);
    const b = c.kind === 'file' ? blobs : streamOnly(blobs);
    let from: Checkpoint | undefined;
    if (c.checkpointAt !== undefined) {
      const first = await UploadSource.open(b, desc, 0);
      const head: Buffer[] = [];
      while (first.position < c.checkpointAt)
        head.push(Buffer.from((await first.take(c.checkpointAt - first.position))!));
      assert.ok(Buffer.concat(head).equals(data.subarray(0, c.checkpointAt)));
      from = first.checkpoint();
      await first.close();
      assert.is(from?.position, c.checkpointAt);
    }
    const source = await UploadSource.open(b, desc, c.start, from);
    const parts: number[] = [];
    const got: Buffer[] = [];
    for (let p = await source.take(c.max); p; p = await source.take(c.max)) {
      parts.push(p.length);
      got.push(Buffer.from(p));
    }
    await source.close();
    assert.ok(Buffer.concat(got).equals(data.subarray(c.start)), 'the bytes from start on');
    assert.ok(
      parts.every((n) => n > 0 && n <= c.max),
      `pieces ${parts.join(',')}`,
    );
    assert.is(source.checkpoint(), undefined, 'nothing left to continue from');
  });
}

const damage: Array<{ name: string; kind: 'file' | 'stream'; at: number; start?: number; checkpointAt?: number }> = [
  { name: 'file, first byte', kind: 'file', at: 0 },
  { name: 'file, last byte', kind: 'file', at: -1 },
  { name: 'stream, a middle byte', kind: 'stream', at: 1_000_000 },
  { name: 'file, in the prefix of a resumed read', kind: 'file', at: 10, start: 2_000_000 },
  { name: 'file, after a checkpoint', kind: 'file', at: -5, start: 1_048_576, checkpointAt: 1_048_576 },
];

for (const c of damage) {
  test(`UploadSource refuses the last piece of a corrupt blob: ${c.name}`, async () => {
    const { blobs, desc } = await blobOf(2);
    let from: Checkpoint | undefined;
    if (c.checkpointAt !== undefined) {
      const first = await UploadSource.open(blobs, desc, 0);
      while (first.position < c.checkpointAt) await first.take(c.checkpointAt - first.position);
      from = first.checkpoint();
      await first.close();
    }
    corrupt(blobs, desc.digest, c.at);
    const source = await UploadSource.open(c.kind === 'file' ? blobs : streamOnly(blobs), desc, c.start ?? 0, from);
    let handedOut = c.start ?? 0;
    const all = (async () => {
      for (let p = await source.take(1 << 20); p; p = await source.take(1 << 20)) handedOut += p.length;
    })();
    await rejectsCorrupt(all, desc.digest);
    await source.close();
    assert.ok(handedOut < desc.size, `handed out ${handedOut} of ${desc.size}: the last piece was held back`);
  });
}

test('UploadSource: a blob shorter than its descriptor, an empty blob, a missing blob', async () => {
  const { blobs, desc } = await blobOf(3);
  chmodSync(blobs.path(desc.digest), 0o644);
  truncateSync(blobs.path(desc.digest), 1000);
  await rejectsCorrupt(readAll(await UploadSource.open(blobs, desc), 1 << 20), desc.digest);
  const empty = await blobs.put(Buffer.alloc(0));
  assert.is((await readAll(await UploadSource.open(blobs, { ...desc, digest: empty.digest, size: 0 }), 10)).length, 0);
  // A descriptor that calls a non-empty blob empty: zero bytes do not hash to its digest.
  const other = await blobs.put('not empty');
  await rejectsCorrupt(UploadSource.open(blobs, { ...desc, digest: other.digest, size: 0 }), other.digest);
  try {
    await UploadSource.open(blobs, { ...desc, digest: `sha256:${'1'.repeat(64)}` });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, StoreError);
    assert.is((err as StoreError).code, 'not-found');
  }
});

const uploads = /\/blobs\/uploads\//;
const pushes: Array<{ name: string; at: number; stream?: boolean; chunked?: boolean; rules?: FaultRule[] }> = [
  { name: 'one PUT, a byte in the middle', at: 1_500_000 },
  { name: 'one PUT, the last byte', at: -1 },
  { name: 'chunks of 1 MB, the first byte', at: 0, chunked: true },
  { name: 'chunks of 1 MB, the last byte', at: -1, chunked: true },
  { name: 'a store read through open()', at: 2_000_000, stream: true },
  // The proxy answers 201 at once and swallows the body: a registry vouching for bytes it never checked.
  {
    name: 'the registry answers 201 before the body is in',
    at: -1,
    rules: [{ method: 'PUT', path: uploads, fault: { kind: 'status', status: 201 } }],
  },
];

for (const [i, c] of pushes.entries()) {
  test(`push of a corrupt layer fails, unretried, and the registry never gets it: ${c.name}`, async () => {
    const { blobs } = store();
    const img = await makeImage(blobs, [size], 300 + i);
    const layer = img.layers[0];
    corrupt(blobs, layer.digest, c.at);
    env.proxy.resetCounters();
    env.proxy.setRules(c.rules ?? []);
    const repo = `verify/case${i}`;
    try {
      await rejectsCorrupt(
        remote.push(
          c.stream ? streamOnly(blobs) : blobs,
          { manifestDigest: img.manifestDigest },
          `${env.proxy.host}/${repo}:1`,
          {
            ...opts,
            ...(c.chunked ? { chunkThreshold: 1_000_000, chunkSize: 1_000_000 } : {}),
          },
        ),
        layer.digest,
      );
    } finally {
      env.proxy.setRules([]);
    }
    assert.is(
      env.proxy.requests.filter((r) => r.method === 'POST' && uploads.test(r.path)).length,
      1,
      'one upload started, none retried',
    );
    assert.ok(env.proxy.bytesUp < layer.size, `${env.proxy.bytesUp} of ${layer.size} bytes went up`);
    assert.not.ok(
      env.proxy.requests.some((r) => r.path.includes('/manifests/')),
      'no manifest pushed',
    );
    assert.not.ok(await registryHas(repo, layer.digest), 'the registry does not have the blob');
  });
}

test(
  'a registry that refuses a PUT at its headers: the rest of the blob is not sent, and its error is what fails ' +
    'the push',
  async () => {
    const { blobs } = store();
    const big = 48 * 1024 * 1024;
    const img = await makeImage(blobs, [big], 9);
    let received = 0;
    // Bytes stop arriving when the client closes the PUT's connection (its request 'close' does not
    // fire once the response is sent): after that, `received` is final.
    let putClosed!: () => void;
    const putDone = new Promise<void>((r) => (putClosed = r));
    // What nginx in front of a registry does with client_max_body_size: 413 as soon as the headers are in.
    const server = createServer((req, res) => {
      if (req.method === 'HEAD') return void res.writeHead(404).end();
      if (req.method === 'POST')
        return void res.writeHead(202, { location: '/v2/r/blobs/uploads/u1', 'docker-upload-uuid': 'u1' }).end();
      req.on('data', (b: Buffer) => (received += b.length)); // keeps reading, as a proxy does
      req.socket.once('close', () => putClosed());
      res
        .writeHead(413, { 'content-type': 'application/json' })
        .end('{"errors":[{"code":"SIZE_INVALID","message":"blob too large for this proxy"}]}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const err = await remote.push(blobs, { manifestDigest: img.manifestDigest }, `${host}/r:1`, opts).then(
        () => undefined,
        (e: Error) => e,
      );
      assert.ok(err, 'the push failed');
      assert.is.not((err as remote.RegistryError).code, 'network', String(err));
      assert.is((err as remote.RegistryError).info.status, 413, String(err));
      // The deadline bounds only a failure (a client that keeps the refused upload's connection).
      let timer: NodeJS.Timeout | undefined;
      const never = new Promise((_, fail) => {
        timer = setTimeout(() => fail(new Error('the PUT connection was never closed')), 60_000);
      });
      await Promise.race([putDone, never]);
      clearTimeout(timer);
      assert.ok(received < big / 2, `sent ${received} of ${big} bytes after the refusal`);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  },
);

test.run();
