// Blobs on the wire. Downloads stream into the store's ingest while being hashed, and an
// interrupted download resumes with a Range request from the bytes already received (same
// ingest, same hash state). Uploads stream from the store through a UploadSource (hashed as it is
// sent, the last piece held back until the digest matched): HEAD to skip, cross-repository mount,
// POST + one PUT of the whole blob, or chunked PATCHes for very large ones with resume from the
// registry's reported offset after a broken chunk.
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import type { BlobStore, Descriptor, Digest, Ingest } from '../types.js';
import type { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';
import { UploadSource, sourceWindow, type Checkpoint } from './upload-source.js';
import { discard, sleep, type BodyWriter } from './transport.js';

export interface TransferStats {
  /** Bytes received for blobs (retries included). */
  bytesDownloaded: number;
  /** Bytes sent for blobs (retries included). */
  bytesUploaded: number;
  blobsDownloaded: number;
  blobsUploaded: number;
  blobsMounted: number;
  /** Already present (locally for pulls, in the registry for pushes). */
  blobsSkipped: number;
  /** Downloads continued with Range / uploads continued at an offset. */
  resumes: number;
  /** Layers compressed for this push (deferred compression: 0 when every one was compressed before). */
  layersCompressed: number;
}

export const newStats = (): TransferStats => ({
  bytesDownloaded: 0,
  bytesUploaded: 0,
  blobsDownloaded: 0,
  blobsUploaded: 0,
  blobsMounted: 0,
  blobsSkipped: 0,
  resumes: 0,
  layersCompressed: 0,
});

const short = (d: string) => d.slice(0, 19);

/** HEAD a blob: true if the registry has it (with the right size when it says one). */
export async function blobExists(client: RegistryClient, repository: string, desc: Descriptor): Promise<boolean> {
  const what = `checking blob ${desc.digest} in ${client.registry}/${repository}`;
  return client.retry(what, async () => {
    const res = await client.request(
      {
        method: 'HEAD',
        url: `/v2/${repository}/blobs/${desc.digest}`,
        scopes: [`repository:${repository}:pull`],
        redirects: true,
      },
      what,
    );
    discard(res);
    if (res.status === 404) return false;
    await client.check(res, [200], what, desc.digest);
    const len = Number(res.headers['content-length']);
    return !(Number.isFinite(len) && res.headers['content-length'] !== undefined && len !== desc.size);
  });
}

async function writeTo(ingest: Ingest, chunk: Buffer): Promise<void> {
  if (!ingest.write(chunk)) await once(ingest as unknown as NodeJS.EventEmitter, 'drain');
}

/**
 * Download a blob into the store, verified against desc.digest and desc.size.
 * Resumes with `Range: bytes=N-` after a broken connection.
 */
export async function fetchBlob(
  client: RegistryClient,
  repository: string,
  desc: Descriptor,
  blobs: BlobStore,
  stats: TransferStats,
): Promise<void> {
  const what = `pulling blob ${desc.digest} from ${client.registry}/${repository}`;
  const ingest = blobs.ingest();
  let ingestError: Error | undefined;
  (ingest as unknown as NodeJS.EventEmitter).on('error', (err: Error) => {
    ingestError = err;
  });
  const hash: Hash = createHash('sha256');
  let received = 0;
  try {
    await client.retry(what, async () => {
      const headers: Record<string, string> = {};
      if (received > 0) headers.range = `bytes=${received}-`;
      const res = await client.request(
        {
          method: 'GET',
          url: `/v2/${repository}/blobs/${desc.digest}`,
          headers,
          scopes: [`repository:${repository}:pull`],
          redirects: true,
        },
        what,
      );
      await client.check(res, received > 0 ? [200, 206] : [200], what, desc.digest);
      let skip = 0;
      if (received > 0) {
        if (res.status === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
          if (!m || Number(m[1]) !== received) {
            res.body.destroy();
            throw new RegistryError(
              'invalid',
              `${what}: asked for bytes from ${received}, got Content-Range "${res.headers['content-range'] ?? ''}"`,
              { host: res.url.host, subject: desc.digest },
            );
          }
          stats.resumes++;
        } else {
          skip = received; // the server ignored Range: drop what we already have
        }
      }
      const declared = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
      if (declared !== undefined && declared + (res.status === 206 ? received : 0) !== desc.size) {
        res.body.destroy();
        throw new RegistryError('invalid', `${what}: the registry says ${declared} bytes, the manifest ${desc.size}`, {
          host: res.url.host,
          subject: desc.digest,
        });
      }
      try {
        for await (const c of res.body as AsyncIterable<Buffer>) {
          let chunk = c;
          stats.bytesDownloaded += chunk.length;
          if (skip > 0) {
            const n = Math.min(skip, chunk.length);
            skip -= n;
            chunk = chunk.subarray(n);
            if (chunk.length === 0) continue;
          }
          if (received + chunk.length > desc.size) {
            res.body.destroy();
            throw new RegistryError('invalid', `${what}: more bytes than the ${desc.size} the manifest says`, {
              host: res.url.host,
              subject: desc.digest,
            });
          }
          hash.update(chunk);
          received += chunk.length;
          await writeTo(ingest, chunk);
          if (ingestError) throw ingestError;
        }
      } catch (err) {
        if (err instanceof RegistryError || ingestError) throw err;
        throw new RegistryError(
          'network',
          `${what}: connection broke after ${received} of ${desc.size} bytes (${(err as Error).message})`,
          { host: res.url.host, subject: desc.digest, retryable: true },
        );
      }
      if (received < desc.size) {
        throw new RegistryError('network', `${what}: connection ended after ${received} of ${desc.size} bytes`, {
          host: res.url.host,
          subject: desc.digest,
          retryable: true,
        });
      }
    });
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== desc.digest) {
      throw new RegistryError('invalid', `${what}: content has digest ${got}`, {
        host: client.host,
        subject: desc.digest,
      });
    }
    await ingest.commit({ digest: desc.digest, size: desc.size });
    stats.blobsDownloaded++;
  } catch (err) {
    await ingest.abort().catch(() => {});
    throw err;
  }
}

/**
 * A request body of bytes [start, start + n) of a blob, read through an UploadSource (hashed from
 * offset 0, the last piece held back until the digest matched). At most `sourceWindow` pieces
 * are on their way to the kernel at once; each is counted once it is there. `done` hears where
 * the source got, so the next chunk carries on without hashing again.
 */
function blobBody(
  blobs: BlobStore,
  desc: Descriptor,
  start: number,
  n: number,
  from: Checkpoint | undefined,
  count: (bytes: number) => void,
  done?: (at: Checkpoint | undefined) => void,
): BodyWriter {
  return {
    async writeTo(write) {
      const source = await UploadSource.open(blobs, desc, start, from);
      const inflight: Array<Promise<void>> = [];
      try {
        for (let left = n; left > 0;) {
          if (inflight.length >= sourceWindow) await inflight.shift();
          const piece = await source.take(left);
          if (!piece) throw new Error(`upload of ${desc.digest} asked for bytes past its end`);
          left -= piece.length;
          const sent = write(piece).then(() => count(piece.length));
          sent.catch(() => {}); // awaited below; a failure must not go unhandled meanwhile
          inflight.push(sent);
        }
        await Promise.all(inflight);
        done?.(source.checkpoint());
      } finally {
        await source.close();
      }
    },
  };
}

export interface UploadOptions {
  /** Blobs larger than this go up in chunks. Default 1 GiB. */
  chunkThreshold?: number;
  /** Default 256 MiB. */
  chunkSize?: number;
  /** Repositories of the same registry that are known to hold the blob. */
  mountFrom?: string[];
}

export type UploadOutcome = 'exists' | 'mounted' | 'uploaded';

/** Push one blob from the store unless the registry has it. */
export async function uploadBlob(
  client: RegistryClient,
  repository: string,
  desc: Descriptor,
  blobs: BlobStore,
  stats: TransferStats,
  opts: UploadOptions = {},
): Promise<UploadOutcome> {
  const what = `pushing blob ${desc.digest} to ${client.registry}/${repository}`;
  // One PUT per blob, as containerd does (docker sends one PATCH): every chunk costs the registry a
  // round trip and a restored hash state, and distribution cannot resume a chunk that broke midway,
  // so smaller chunks bought little. Only very large blobs are split, to bound what a break resends
  // on registries that can resume.
  const threshold = opts.chunkThreshold ?? 1024 * 1024 * 1024;
  const chunkSize = opts.chunkSize ?? 256 * 1024 * 1024;
  const from = (opts.mountFrom ?? []).slice(0, 3);
  const pushScope = `repository:${repository}:pull,push`;
  if (await blobExists(client, repository, desc)) {
    stats.blobsSkipped++;
    return 'exists';
  }
  let first = true;
  return client.retry(what, async (attempt) => {
    if (attempt > 1 && (await blobExists(client, repository, desc))) {
      // An earlier attempt finished on the server even though we did not hear about it.
      stats.blobsUploaded++;
      return 'uploaded' as const;
    }
    let location: URL | undefined;
    // Try mounting (first attempt only); a registry that cannot mount starts an upload (202).
    for (const source of first ? from : []) {
      const q = new URLSearchParams({ mount: desc.digest, from: source });
      const res = await client.request(
        {
          method: 'POST',
          url: `/v2/${repository}/blobs/uploads/?${q}`,
          headers: { 'content-length': '0' },
          scopes: [pushScope, `repository:${source}:pull`],
        },
        what,
      );
      if (res.status === 201) {
        discard(res);
        stats.blobsMounted++;
        client.log(`mounted ${short(desc.digest)} from ${source}`);
        return 'mounted' as const;
      }
      await client.check(res, [202], what, desc.digest);
      discard(res);
      location = client.followLocation(res.url, res.headers.location, what);
      break;
    }
    first = false;
    if (!location) {
      const res = await client.request(
        {
          method: 'POST',
          url: `/v2/${repository}/blobs/uploads/`,
          headers: { 'content-length': '0' },
          scopes: [pushScope],
        },
        what,
      );
      await client.check(res, [202], what, desc.digest);
      discard(res);
      location = client.followLocation(res.url, res.headers.location, what);
    }
    const count = (n: number) => {
      stats.bytesUploaded += n;
    };

    if (desc.size <= threshold) {
      const put = new URL(location);
      put.searchParams.set('digest', desc.digest);
      const res = await client.request(
        {
          method: 'PUT',
          url: put,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
          body: blobBody(blobs, desc, 0, desc.size, undefined, count),
          scopes: [pushScope],
        },
        what,
      );
      await client.check(res, [201, 204], what, desc.digest);
      discard(res);
      stats.blobsUploaded++;
      return 'uploaded' as const;
    }

    // Chunked upload.
    let offset = 0;
    let checkpoint: Checkpoint | undefined;
    let verified = false;
    let resumes = 0;
    while (offset < desc.size) {
      const n = Math.min(chunkSize, desc.size - offset);
      const end = offset + n - 1;
      let reached: Checkpoint | undefined;
      try {
        const res = await client.request(
          {
            method: 'PATCH',
            url: location,
            headers: {
              'content-type': 'application/octet-stream',
              'content-length': String(n),
              'content-range': `${offset}-${end}`,
            },
            body: blobBody(blobs, desc, offset, n, checkpoint, count, (at) => {
              reached = at;
            }),
            scopes: [pushScope],
          },
          what,
        );
        await client.check(res, [202, 204], what, desc.digest);
        discard(res);
        location = client.followLocation(res.url, res.headers.location ?? location.href, what);
        const range = parseRange(res.headers.range);
        if (range !== undefined && range !== end) {
          throw new RegistryError(
            'invalid',
            `${what}: after bytes ${offset}-${end} the registry reports Range 0-${range}`,
            { host: client.host, subject: desc.digest, retryable: true },
          );
        }
        offset = end + 1;
        checkpoint = reached;
        verified = offset === desc.size;
      } catch (err) {
        if (!(err instanceof RegistryError) || !err.retryable || ++resumes >= client.policy.attempts) throw err;
        // Ask the registry how much it has and carry on from there.
        await sleep(Math.random() * Math.min(client.policy.maxDelayMs, client.policy.baseDelayMs * 2 ** (resumes - 1)));
        const status = await client.request({ method: 'GET', url: location, scopes: [pushScope] }, what);
        discard(status);
        const have = status.status === 204 || status.status === 202 ? parseRange(status.headers.range) : undefined;
        if (have === undefined && !(status.status === 204 && status.headers.range === undefined)) {
          // The session is gone or cannot be resumed (distribution refuses a session whose
          // state no longer matches): start a new upload.
          throw new RegistryError(
            'http',
            `${what}: upload could not be resumed after "${err.message}" (status check answered ${status.status})`,
            { host: client.host, status: status.status, subject: desc.digest, retryable: true },
          );
        }
        if (have !== undefined && have >= desc.size) {
          throw new RegistryError(
            'invalid',
            `${what}: the registry reports Range 0-${have} of a ${desc.size}-byte blob`,
            { host: client.host, subject: desc.digest },
          );
        }
        location = client.followLocation(status.url, status.headers.location ?? location.href, what);
        offset = have === undefined || have === 0 ? 0 : have + 1;
        stats.resumes++;
        client.log(`resuming upload of ${short(desc.digest)} at ${offset}`);
      }
    }
    // Sending the last byte carried the check; if the registry claimed the rest on a resume, check here.
    if (!verified) await (await UploadSource.open(blobs, desc, desc.size)).close();
    const put = new URL(location);
    put.searchParams.set('digest', desc.digest);
    const res = await client.request(
      { method: 'PUT', url: put, headers: { 'content-length': '0' }, scopes: [pushScope] },
      what,
    );
    await client.check(res, [201, 204], what, desc.digest);
    discard(res);
    stats.blobsUploaded++;
    return 'uploaded' as const;
  });
}

/** "0-N" → N (the last byte the registry has); "0-0" may also mean nothing yet, callers treat both alike. */
function parseRange(h: string | string[] | undefined): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(String(h ?? '').trim());
  return m ? Number(m[1]) : undefined;
}

/**
 * Upload a blob whose digest is known only at its end (a layer being compressed): POST a session,
 * one PATCH streaming the pieces as they come (chunked transfer encoding), then the closing PUT
 * carrying the digest `done` resolves to once the last piece was taken. Not retried: the pieces
 * cannot be read twice. A caller that gets a retryable error makes the blob in the store and
 * pushes it from there with uploadBlob.
 */
export async function uploadStream(
  client: RegistryClient,
  repository: string,
  pieces: AsyncIterable<Buffer>,
  done: Promise<{ digest: Digest; size: number }>,
  stats: TransferStats,
): Promise<void> {
  const what = `pushing a layer to ${client.registry}/${repository}`;
  const pushScope = `repository:${repository}:pull,push`;
  const started = await client.retry(what, async () => {
    const res = await client.request(
      {
        method: 'POST',
        url: `/v2/${repository}/blobs/uploads/`,
        headers: { 'content-length': '0' },
        scopes: [pushScope],
      },
      what,
    );
    await client.check(res, [202], what);
    discard(res);
    return client.followLocation(res.url, res.headers.location, what);
  });
  let sent = false;
  const res = await client.request(
    {
      method: 'PATCH',
      url: started,
      headers: { 'content-type': 'application/octet-stream' },
      body: {
        async writeTo(write) {
          if (sent)
            throw new RegistryError('network', `${what}: the registry asked for a streamed layer again`, {
              host: client.host,
              retryable: true,
            });
          sent = true;
          for await (const piece of pieces) {
            await write(piece);
            stats.bytesUploaded += piece.length;
          }
        },
      },
      scopes: [pushScope],
    },
    what,
  );
  await client.check(res, [202, 204], what);
  discard(res);
  const location = client.followLocation(res.url, res.headers.location ?? started.href, what);
  const blob = await done;
  const put = new URL(location);
  put.searchParams.set('digest', blob.digest);
  const closing = await client.request(
    { method: 'PUT', url: put, headers: { 'content-length': '0' }, scopes: [pushScope] },
    `${what} (${blob.digest})`,
  );
  await client.check(closing, [201, 204], what, blob.digest);
  discard(closing);
  stats.blobsUploaded++;
}
