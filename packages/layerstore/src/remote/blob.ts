// Blobs on the wire. Downloads stream into the store's ingest while being hashed, and an
// interrupted download resumes with a Range request from the bytes already received (same
// ingest, same hash state). Uploads stream from the store: HEAD to skip, cross-repository
// mount, monolithic POST+PUT for small blobs, chunked PATCH for large ones with resume from
// the registry's reported offset after a broken chunk.
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { BlobStore, Descriptor, Digest, Ingest } from '../types.js';
import type { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';
import { discard, sleep } from './transport.js';

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
}

export const newStats = (): TransferStats => ({ bytesDownloaded: 0, bytesUploaded: 0, blobsDownloaded: 0, blobsUploaded: 0, blobsMounted: 0, blobsSkipped: 0, resumes: 0 });

const short = (d: string) => d.slice(0, 19);

/** HEAD a blob: true if the registry has it (with the right size when it says one). */
export async function blobExists(client: RegistryClient, repository: string, desc: Descriptor): Promise<boolean> {
  const what = `checking blob ${desc.digest} in ${client.registry}/${repository}`;
  return client.retry(what, async () => {
    const res = await client.request({ method: 'HEAD', url: `/v2/${repository}/blobs/${desc.digest}`, scopes: [`repository:${repository}:pull`], redirects: true }, what);
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
export async function fetchBlob(client: RegistryClient, repository: string, desc: Descriptor, blobs: BlobStore, stats: TransferStats): Promise<void> {
  const what = `pulling blob ${desc.digest} from ${client.registry}/${repository}`;
  const ingest = blobs.ingest();
  let ingestError: Error | undefined;
  (ingest as unknown as NodeJS.EventEmitter).on('error', (err: Error) => { ingestError = err; });
  const hash: Hash = createHash('sha256');
  let received = 0;
  try {
    await client.retry(what, async () => {
      const headers: Record<string, string> = {};
      if (received > 0) headers.range = `bytes=${received}-`;
      const res = await client.request({ method: 'GET', url: `/v2/${repository}/blobs/${desc.digest}`, headers, scopes: [`repository:${repository}:pull`], redirects: true }, what);
      await client.check(res, received > 0 ? [200, 206] : [200], what, desc.digest);
      let skip = 0;
      if (received > 0) {
        if (res.status === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
          if (!m || Number(m[1]) !== received) {
            res.body.destroy();
            throw new RegistryError('invalid', `${what}: asked for bytes from ${received}, got Content-Range "${res.headers['content-range'] ?? ''}"`, { host: res.url.host, subject: desc.digest });
          }
          stats.resumes++;
        } else {
          skip = received; // the server ignored Range: drop what we already have
        }
      }
      const declared = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
      if (declared !== undefined && declared + (res.status === 206 ? received : 0) !== desc.size) {
        res.body.destroy();
        throw new RegistryError('invalid', `${what}: the registry says ${declared} bytes, the manifest ${desc.size}`, { host: res.url.host, subject: desc.digest });
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
            throw new RegistryError('invalid', `${what}: more bytes than the ${desc.size} the manifest says`, { host: res.url.host, subject: desc.digest });
          }
          hash.update(chunk);
          received += chunk.length;
          await writeTo(ingest, chunk);
          if (ingestError) throw ingestError;
        }
      } catch (err) {
        if (err instanceof RegistryError || ingestError) throw err;
        throw new RegistryError('network', `${what}: connection broke after ${received} of ${desc.size} bytes (${(err as Error).message})`, { host: res.url.host, subject: desc.digest, retryable: true });
      }
      if (received < desc.size) {
        throw new RegistryError('network', `${what}: connection ended after ${received} of ${desc.size} bytes`, { host: res.url.host, subject: desc.digest, retryable: true });
      }
    });
    const got = `sha256:${hash.digest('hex')}` as Digest;
    if (got !== desc.digest) {
      throw new RegistryError('invalid', `${what}: content has digest ${got}`, { host: client.host, subject: desc.digest });
    }
    await ingest.commit({ digest: desc.digest, size: desc.size });
    stats.blobsDownloaded++;
  } catch (err) {
    await ingest.abort().catch(() => {});
    throw err;
  }
}

/**
 * Reads a blob sequentially and hands out exactly-sized pieces, so a chunked upload never
 * holds a chunk in memory. After a failure, make a new one at the resume offset.
 */
class ByteSource {
  private stream: Readable | undefined;
  private it: AsyncIterator<Buffer> | undefined;
  private leftover: Buffer | undefined;
  private toSkip: number;
  constructor(private readonly open: () => Readable, start: number) {
    this.toSkip = start;
  }
  private async nextChunk(): Promise<Buffer | undefined> {
    if (this.leftover) {
      const l = this.leftover;
      this.leftover = undefined;
      return l;
    }
    if (!this.it) {
      this.stream = this.open();
      this.it = this.stream[Symbol.asyncIterator]();
    }
    for (;;) {
      const r = await this.it.next();
      if (r.done) return undefined;
      let c = r.value as Buffer;
      if (this.toSkip > 0) {
        const n = Math.min(this.toSkip, c.length);
        this.toSkip -= n;
        c = c.subarray(n);
        if (c.length === 0) continue;
      }
      return c;
    }
  }
  /** A stream of exactly the next n bytes. */
  take(n: number, count: (bytes: number) => void): Readable {
    const self = this;
    let left = n;
    return Readable.from((async function* () {
      while (left > 0) {
        const c = await self.nextChunk();
        if (!c) throw new Error('blob in the store is shorter than its descriptor');
        const piece = c.length > left ? c.subarray(0, left) : c;
        if (c.length > left) self.leftover = c.subarray(left);
        left -= piece.length;
        count(piece.length);
        yield piece;
      }
    })(), { objectMode: false });
  }
  close(): void {
    this.stream?.destroy();
  }
}

export interface UploadOptions {
  /** Blobs larger than this go up in chunks. Default 16 MiB. */
  chunkThreshold?: number;
  /** Default 16 MiB. */
  chunkSize?: number;
  /** Repositories of the same registry that are known to hold the blob. */
  mountFrom?: string[];
}

export type UploadOutcome = 'exists' | 'mounted' | 'uploaded';

/** Push one blob from the store unless the registry has it. */
export async function uploadBlob(client: RegistryClient, repository: string, desc: Descriptor, open: () => Readable, stats: TransferStats, opts: UploadOptions = {}): Promise<UploadOutcome> {
  const what = `pushing blob ${desc.digest} to ${client.registry}/${repository}`;
  const threshold = opts.chunkThreshold ?? 16 * 1024 * 1024;
  const chunkSize = opts.chunkSize ?? 16 * 1024 * 1024;
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
      const res = await client.request({ method: 'POST', url: `/v2/${repository}/blobs/uploads/?${q}`, headers: { 'content-length': '0' }, scopes: [pushScope, `repository:${source}:pull`] }, what);
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
      const res = await client.request({ method: 'POST', url: `/v2/${repository}/blobs/uploads/`, headers: { 'content-length': '0' }, scopes: [pushScope] }, what);
      await client.check(res, [202], what, desc.digest);
      discard(res);
      location = client.followLocation(res.url, res.headers.location, what);
    }
    const count = (n: number) => { stats.bytesUploaded += n; };

    if (desc.size <= threshold) {
      const put = new URL(location);
      put.searchParams.set('digest', desc.digest);
      const res = await client.request({
        method: 'PUT', url: put, headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body: () => new ByteSource(open, 0).take(desc.size, count), scopes: [pushScope],
      }, what);
      await client.check(res, [201, 204], what, desc.digest);
      discard(res);
      stats.blobsUploaded++;
      return 'uploaded' as const;
    }

    // Chunked upload.
    let offset = 0;
    let source = new ByteSource(open, 0);
    let resumes = 0;
    try {
      while (offset < desc.size) {
        const n = Math.min(chunkSize, desc.size - offset);
        const end = offset + n - 1;
        const chunkSource = source;
        try {
          const res = await client.request({
            method: 'PATCH', url: location,
            headers: { 'content-type': 'application/octet-stream', 'content-length': String(n), 'content-range': `${offset}-${end}` },
            body: () => chunkSource.take(n, count), scopes: [pushScope],
          }, what);
          await client.check(res, [202, 204], what, desc.digest);
          discard(res);
          location = client.followLocation(res.url, res.headers.location ?? location.href, what);
          const range = parseRange(res.headers.range);
          if (range !== undefined && range !== end) {
            throw new RegistryError('invalid', `${what}: after bytes ${offset}-${end} the registry reports Range 0-${range}`, { host: client.host, subject: desc.digest, retryable: true });
          }
          offset = end + 1;
        } catch (err) {
          if (!(err instanceof RegistryError) || !err.retryable || ++resumes >= client.policy.attempts) throw err;
          // Ask the registry how much it has and carry on from there.
          source.close();
          await sleep(Math.random() * Math.min(client.policy.maxDelayMs, client.policy.baseDelayMs * 2 ** (resumes - 1)));
          const status = await client.request({ method: 'GET', url: location, scopes: [pushScope] }, what);
          discard(status);
          const have = status.status === 204 || status.status === 202 ? parseRange(status.headers.range) : undefined;
          if (have === undefined && !(status.status === 204 && status.headers.range === undefined)) {
            // The session is gone or cannot be resumed (distribution refuses a session whose
            // state no longer matches): start a new upload.
            throw new RegistryError('http', `${what}: upload could not be resumed after "${err.message}" (status check answered ${status.status})`, { host: client.host, status: status.status, subject: desc.digest, retryable: true });
          }
          location = client.followLocation(status.url, status.headers.location ?? location.href, what);
          offset = have === undefined || have === 0 ? 0 : have + 1;
          stats.resumes++;
          client.log(`resuming upload of ${short(desc.digest)} at ${offset}`);
          source = new ByteSource(open, offset);
        }
      }
    } finally {
      source.close();
    }
    const put = new URL(location);
    put.searchParams.set('digest', desc.digest);
    const res = await client.request({ method: 'PUT', url: put, headers: { 'content-length': '0' }, scopes: [pushScope] }, what);
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
