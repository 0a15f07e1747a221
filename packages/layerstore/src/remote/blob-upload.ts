// Uploads of a blob the store already holds, split from blob.ts because pushing has a protocol of
// its own: HEAD to skip, cross-repository mount, POST + one PUT of the whole blob, or chunked
// PATCHes for very large ones with resume from the registry's reported offset after a broken
// chunk. The bytes stream from the store through an UploadSource (hashed as they are sent, the
// last piece held back until the digest matched).
import type { BlobStore, Descriptor } from '../types.js';
import { blobExists, short, type TransferStats } from './blob.js';
import type { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';
import { UploadSource, sourceWindow, type Checkpoint } from './upload-source.js';
import { discard, sleep, type BodyWriter } from './transport.js';

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
    location ??= await openUpload(client, repository, what, desc.digest);
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
        // Stopped (Ctrl-C) while a chunk failed: the stop, at once, not a backoff and a status check first.
        const { signal } = client.options;
        if (signal?.aborted) throw signal.reason as Error;
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
    await closeUpload(client, repository, location, desc.digest, what, what);
    stats.blobsUploaded++;
    return 'uploaded' as const;
  });
}

/** Starts an upload session (POST, 202): the URL its bytes go to. `subject` names the blob in an error. */
export async function openUpload(
  client: RegistryClient,
  repository: string,
  what: string,
  subject?: string,
): Promise<URL> {
  const res = await client.request(
    {
      method: 'POST',
      url: `/v2/${repository}/blobs/uploads/`,
      headers: { 'content-length': '0' },
      scopes: [`repository:${repository}:pull,push`],
    },
    what,
  );
  await client.check(res, [202], what, subject);
  discard(res);
  return client.followLocation(res.url, res.headers.location, what);
}

/**
 * Ends an upload session whose bytes are all sent: the empty PUT naming its digest (201 or 204). `label` starts the
 * request's own errors (transport, auth), `what` an error status's.
 */
export async function closeUpload(
  client: RegistryClient,
  repository: string,
  location: URL,
  digest: string,
  what: string,
  label: string,
): Promise<void> {
  const put = new URL(location);
  put.searchParams.set('digest', digest);
  const res = await client.request(
    { method: 'PUT', url: put, headers: { 'content-length': '0' }, scopes: [`repository:${repository}:pull,push`] },
    label,
  );
  await client.check(res, [201, 204], what, digest);
  discard(res);
}

/** "0-N" → N (the last byte the registry has); "0-0" may also mean nothing yet, callers treat both alike. */
function parseRange(h: string | string[] | undefined): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(String(h ?? '').trim());
  return m ? Number(m[1]) : undefined;
}
