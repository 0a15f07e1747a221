// The blob uploads of one push into one repository: each blob (and each layer to compress) started
// once however often it is asked for, a few at a time. A push asks for all of an image's blobs at
// once; `build --push` asks for each layer as soon as the build has committed it, so its
// compression and upload overlap the build's later steps, and the push at the end finds them done
// (or running) here and only waits. The manifest is not this file's: it goes up after every blob.
import type { BlobStore, Compression, Descriptor, Digest, Layer, Manifest, Image } from '../types.js';
import { parseReference, type Reference } from '../reference.js';
import { newStats, type TransferStats } from './blob.js';
import { uploadBlob, type UploadOptions, type UploadOutcome } from './blob-upload.js';
import { uploadStream } from './stream-upload.js';
import { RegistryError } from './errors.js';
import { Limiter } from './pool.js';
import type { RegistryClient } from './client.js';
import { clientFor, type RemoteOptions } from './pull.js';

/** How a push gets a layer compressed (compressed.ts, over a Store). */
export interface LayerCodec {
  /** What else than the compression makes this codec's blobs differ from another's (a level, forced compression). */
  variant?: string;
  needsCompression(layer: Layer, c: Compression): boolean;
  /** The compressed blob made before, if the store still has it. */
  known(layer: Layer, c: Compression): Promise<Layer | undefined>;
  /**
   * Compress now: pieces as they are made (teed into the store), the blob's digest and size once the
   * last was taken, and the blob once the store has committed and remembered it.
   */
  stream(
    layer: Layer,
    c: Compression,
  ): { pieces: AsyncIterable<Buffer>; written: Promise<{ digest: Digest; size: number }>; done: Promise<Layer> };
  /** Compress into the store (or find it there), for a push from the store after a streamed upload failed. */
  materialise(layer: Layer, c: Compression): Promise<{ layer: Layer; compressed: boolean }>;
  /** The manifest of the image with these layers (compressedImage's). */
  manifest(image: Image, layers: Layer[]): { manifest: Manifest; bytes: Buffer };
}

/** What happened to one blob, once it is in the registry. */
export interface UploadEvent {
  digest: Digest;
  /** For a layer: its diffID (the uncompressed tar's digest). */
  diffID?: Digest;
  /** `streamed`: compressed while it went up (the digest known only at the end). */
  outcome: UploadOutcome | 'streamed';
}

export interface UploadsOptions extends RemoteOptions, Pick<UploadOptions, 'chunkThreshold' | 'chunkSize'> {
  /** Blob uploads at once. Default 4. Layers being compressed are two at most besides (each keeps both cores busy). */
  concurrency?: number;
  /** Hears about each blob as it lands in the registry (a trace; a test's signal). */
  onUploaded?: (e: UploadEvent) => void;
}

const descriptorOf = (l: Layer): Descriptor => ({ mediaType: l.mediaType, digest: l.digest, size: l.size });

export class Uploads {
  readonly stats: TransferStats;
  private readonly started = new Map<string, Promise<Layer | undefined>>();
  private readonly blobSlots: Limiter;
  private readonly compressSlots: Limiter;
  /** The first failure: nothing starts after it, and the push fails with it. */
  private failure: { err: unknown } | undefined;
  private closed = false;

  constructor(
    readonly client: RegistryClient,
    private readonly blobs: BlobStore,
    readonly ref: Reference,
    private readonly opts: UploadsOptions = {},
    stats?: TransferStats,
  ) {
    this.stats = stats ?? newStats();
    this.blobSlots = new Limiter(opts.concurrency ?? 4);
    this.compressSlots = new Limiter(Math.min(2, opts.concurrency ?? 4));
  }

  /** Whether pushes to `ref` can use these uploads: the same registry and repository. */
  serves(ref: Reference): boolean {
    return ref.registry === this.ref.registry && ref.repository === this.ref.repository;
  }

  /** A blob of the store into the repository, unless it is there (HEAD) or can be mounted from another one. */
  blob(d: Descriptor): Promise<void> {
    return this.once(d.digest, () => this.blobSlots.run(() => this.go(() => this.uploadBlob(d)))).then(() => {});
  }

  /**
   * A layer into the repository, compressed with `c` if the store holds it uncompressed: the blob
   * compressed before if the store has it (pushed as any blob), else compressed as it goes up.
   * Resolves to the layer as pushed.
   */
  layer(l: Layer, c: Compression, codec: LayerCodec): Promise<Layer> {
    if (!codec.needsCompression(l, c)) return this.blob(descriptorOf(l)).then(() => l);
    return this.once(`${l.diffID} ${c} ${codec.variant ?? ''}`, async () => {
      const known = await codec.known(l, c);
      if (known) {
        await this.blob(descriptorOf(known));
        return known;
      }
      return this.compressSlots.run(() => this.go(() => this.stream(l, c, codec)));
    }) as Promise<Layer>;
  }

  /** Every upload asked for has settled; throws the first failure. */
  async settled(): Promise<void> {
    for (let n = -1; n !== this.started.size;) {
      n = this.started.size;
      await Promise.allSettled([...this.started.values()]);
    }
    if (this.failure) throw this.failure.err;
  }

  /**
   * No more uploads start (a build failed: no manifest will name them); those running finish, and
   * what they put in the registry is recorded for mounts. Never throws.
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.settled().catch(() => {});
    await this.opts.locations?.save().catch(() => {});
  }

  private once(key: string, start: () => Promise<Layer | undefined>): Promise<Layer | undefined> {
    let p = this.started.get(key);
    if (!p) {
      if (this.closed) return Promise.reject(new Error(`uploads to ${this.ref.repository} were closed`));
      p = start().catch((err: unknown) => {
        this.failure ??= { err };
        throw err;
      });
      p.catch(() => {}); // whoever asked observes it; the rest must not see an unhandled rejection
      this.started.set(key, p);
    }
    return p;
  }

  /**
   * Work that got its slot: it does not start after a failure or once closed. Its own failure is
   * recorded before the slot passes on, so the next in line does not start either.
   */
  private async go<T>(fn: () => Promise<T>): Promise<T> {
    if (this.failure) throw this.failure.err;
    if (this.closed) throw new Error(`uploads to ${this.ref.repository} were closed`);
    try {
      return await fn();
    } catch (err) {
      this.failure ??= { err };
      throw err;
    }
  }

  private async uploadBlob(d: Descriptor): Promise<undefined> {
    const { client, blobs, ref, opts } = this;
    const size = await blobs.size(d.digest);
    if (size === undefined)
      throw new RegistryError(
        'not-found',
        `cannot push ${d.digest} to ${ref.registry}/${ref.repository}: not in the local store`,
        { subject: d.digest },
      );
    if (size !== d.size)
      throw new RegistryError(
        'invalid',
        `cannot push ${d.digest}: ${size} bytes in the store, ${d.size} in the manifest`,
        {
          subject: d.digest,
        },
      );
    const outcome = await uploadBlob(client, ref.repository, d, blobs, this.stats, {
      chunkThreshold: opts.chunkThreshold,
      chunkSize: opts.chunkSize,
      mountFrom: opts.locations?.sources(ref.registry, ref.repository, d.digest),
    });
    opts.locations?.add(ref.registry, ref.repository, d.digest);
    opts.onUploaded?.({ digest: d.digest, outcome });
    return undefined;
  }

  /**
   * Compress, hash and upload in one pass (uploadStream), the compressed bytes teed into the
   * store, so that the next push or export of that layer compresses nothing.
   */
  private async stream(l: Layer, c: Compression, codec: LayerCodec): Promise<Layer> {
    const { client, ref, opts } = this;
    const s = codec.stream(l, c);
    this.stats.layersCompressed++;
    let started = false;
    async function* pieces(): AsyncGenerator<Buffer> {
      started = true;
      yield* s.pieces;
    }
    try {
      // The closing PUT goes as soon as the digest is known; the store commits the blob meanwhile.
      await uploadStream(client, ref.repository, pieces(), s.written, this.stats);
      const made = await s.done;
      opts.locations?.add(ref.registry, ref.repository, made.digest);
      // Asked for as a blob later (another image of the same push), it is known to be there.
      this.started.set(made.digest, Promise.resolve(undefined));
      opts.onUploaded?.({ digest: made.digest, diffID: l.diffID, outcome: 'streamed' });
      return made;
    } catch (err) {
      if (!(err instanceof RegistryError) || !err.retryable) throw err;
      // The stream cannot be replayed: make the blob in the store (compressed.ts finds it if the
      // stream got that far) and push it from there, with uploadBlob's retries and resumes.
      client.log(`streamed upload of layer ${l.diffID} failed (${err.message}); pushing it from the store`);
      // A stream that got to its end is still being committed: wait, or it would be compressed again.
      if (started) await s.done.catch(() => {});
      const m = await codec.materialise(l, c);
      if (m.compressed) this.stats.layersCompressed++;
      await this.blob(descriptorOf(m.layer));
      return m.layer;
    }
  }
}

/**
 * Uploads into the repository of `reference`, for a push that starts before its image exists
 * (`build --push`): add layers with layer() as they are made, then push({ ..., uploads }).
 */
export function startUploads(blobs: BlobStore, reference: string | Reference, opts: UploadsOptions = {}): Uploads {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  return new Uploads(clientFor(ref, opts), blobs, ref, opts);
}
