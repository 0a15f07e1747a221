// Blobs on the wire, the download side and what both directions share. Downloads stream into the
// store's ingest, which hashes what it writes and commits only the digest and size asked for; an
// interrupted download resumes with a Range request from the bytes already received (same ingest,
// same hash state). Uploads live in blob-upload.ts (known digest, from the store) and stream-upload.ts
// (digest known only at the end).
import { once } from 'node:events';
import { StoreError, type BlobStore, type Descriptor, type Ingest } from '../types.js';
import type { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';
import { discard } from './transport.js';

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

/** A digest short enough for a log line. */
export const short = (d: string) => d.slice(0, 19);

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
    // The ingest hashed every byte as it wrote it (one pass: hashing here too cost a second one) and
    // makes the blob visible only if it is the one asked for.
    await ingest.commit({ digest: desc.digest, size: desc.size }).catch((e: unknown) => {
      if (e instanceof StoreError && e.code === 'invalid')
        throw new RegistryError('invalid', `${what}: ${e.message}`, { host: client.host, subject: desc.digest });
      throw e;
    });
    stats.blobsDownloaded++;
  } catch (err) {
    await ingest.abort().catch(() => {});
    throw err;
  }
}
