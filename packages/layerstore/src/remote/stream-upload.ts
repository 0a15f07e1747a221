// Streamed uploads, split from blob.ts because they follow other rules than uploads from the store:
// the digest is known only once the last piece went out (a layer being compressed while it is
// pushed), so nothing can be checked beforehand, mounted, or sent twice.
import type { Digest } from '../types.js';
import type { TransferStats } from './blob.js';
import type { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';
import { discard } from './transport.js';
import { closeUpload, openUpload } from './blob-upload.js';

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
  const started = await client.retry(what, () => openUpload(client, repository, what));
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
  await closeUpload(client, repository, location, blob.digest, what, `${what} (${blob.digest})`);
  stats.blobsUploaded++;
}
