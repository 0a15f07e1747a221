// Content-addressed blobs under blobs/sha256/<hex>, written like containerd's content store:
// an ingest writes a temp file under tmp/ while hashing, and only commit() — after checking size and
// digest and fsyncing — renames it into place. Nothing unverified is ever visible under blobs/.
// Reads verify too: open() streams through an ssri integrity checker and fails with
// StoreError('corrupt') instead of quietly delivering damaged bytes.
import { createReadStream, promises as fsp, readFileSync, statSync, utimesSync } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { join } from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import type Ssri from 'ssri';
import { createRequire } from 'node:module';

// ssri (and what it pulls in) is loaded on the first verified read, not at start-up.
let ssriModule: typeof Ssri | undefined;
const ssriLib = (): typeof Ssri => (ssriModule ??= createRequire(import.meta.url)('ssri') as typeof Ssri);
import { StoreError, type BlobStore, type Digest, type Ingest } from './types.js';
import type { LeaseHolder } from './leases.js';
import { checkDigest, fsyncDir, hexOf, randomId } from './fsutil.js';
import { ThreadHash } from './hash-thread.js';

export class FileBlobStore implements BlobStore {
  readonly dir: string;
  /** @param held the lease new and reused blobs go into (leases.ts), if the caller has one */
  constructor(
    readonly root: string,
    readonly tmpDir: string,
    readonly held?: LeaseHolder,
  ) {
    this.dir = join(root, 'blobs', 'sha256');
  }

  /** Path of a blob's file. Only for hardlinking/copying out and for the snapshotter; read through open(). */
  path(digest: Digest): string {
    return join(this.dir, hexOf(digest));
  }

  /** Whether the blob is here. Asking means using: with a lease, it is leased first (leases.ts protocol). */
  async has(digest: Digest): Promise<boolean> {
    await this.held?.reuse('blob', digest);
    return (await this.size(digest)) !== undefined;
  }

  async size(digest: Digest): Promise<number | undefined> {
    try {
      return statSync(this.path(digest)).size; // SmallFileIO (fsutil.ts)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /**
   * Mark a blob as in use now and report whether it still exists: it goes into the lease, if any
   * (what protects it from prune), and its mtime is refreshed (what prune's grace period reads).
   */
  async touch(digest: Digest): Promise<boolean> {
    await this.held?.reuse('blob', digest);
    const now = new Date();
    try {
      utimesSync(this.path(digest), now, now); // SmallFileIO (fsutil.ts)
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  /** Every digest present under blobs/sha256 (temp files never live there). */
  async list(): Promise<Digest[]> {
    const names = await fsp.readdir(this.dir);
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}` as Digest);
  }

  open(digest: Digest): Readable {
    const out = new PassThrough();
    let path: string;
    try {
      path = this.path(digest);
    } catch (e) {
      process.nextTick(() => out.destroy(e as Error));
      return out;
    }
    const file = createReadStream(path);
    const ssri = ssriLib();
    const checker = ssri.integrityStream({ integrity: ssri.fromHex(hexOf(digest), 'sha256'), algorithms: ['sha256'] });
    file.on('error', (e: NodeJS.ErrnoException) => {
      out.destroy(e.code === 'ENOENT' ? new StoreError('not-found', `blob ${digest} not found`, digest) : e);
    });
    checker.on('error', (e: Error & { code?: string }) => {
      out.destroy(
        new StoreError(
          'corrupt',
          `blob ${digest} is corrupt (${e.code ?? e.message}): ${path} does not match its digest; remove it and ` +
            `pull/rebuild`,
          digest,
        ),
      );
    });
    out.on('close', () => file.destroy());
    file.pipe(checker as unknown as NodeJS.WritableStream);
    checker.pipe(out);
    return out;
  }

  ingest(): Ingest {
    return new FileIngest(this);
  }

  async put(bytes: Buffer | string): Promise<{ digest: Digest; size: number }> {
    // A blob already present with this content needs no temp file, fsync or rename: a cached
    // rebuild writes the same config and manifest again. touch() keeps prune from taking it.
    const buf = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
    const digest = `sha256:${createHash('sha256').update(buf).digest('hex')}` as Digest;
    if ((await this.size(digest)) === buf.length && (await this.touch(digest))) return { digest, size: buf.length };
    const w = new FileIngest(this);
    await new Promise<void>((resolve, reject) => {
      w.on('error', reject);
      w.end(buf, () => resolve());
    });
    return w.commit();
  }

  async read(digest: Digest): Promise<Buffer> {
    let data: Buffer;
    try {
      data = readFileSync(this.path(digest)); // SmallFileIO (fsutil.ts): only small blobs are read whole
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        throw new StoreError('not-found', `blob ${digest} not found`, digest);
      throw e;
    }
    const actual = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (actual !== digest)
      throw new StoreError('corrupt', `blob ${digest} is corrupt: its content hashes to ${actual}`, digest);
    return data;
  }

  async readJSON<T>(digest: Digest): Promise<T> {
    const data = await this.read(digest);
    try {
      return JSON.parse(data.toString('utf8')) as T;
    } catch (e) {
      throw new StoreError('invalid', `blob ${digest} is not JSON: ${(e as Error).message}`, digest);
    }
  }
}

/**
 * What an ingest may hold before write() asks its writer to wait. Large, so that a downloader keeps
 * reading its socket while the previous megabytes go to the file, and what has queued meanwhile goes
 * down in one writev: with Writable's 16 KiB default, each 64 KiB socket chunk waited for its own
 * thread-pool write before the next was read (a pull took the file's write time plus the network's,
 * not the larger of the two). Memory per ingest stays bounded by it.
 */
const ingestBuffer = 4 * 1024 * 1024;
/**
 * Flush-behind: every this many bytes an ingest starts an fdatasync of what it wrote so far, without
 * waiting for it, so the disk writes a large blob while the rest arrives instead of all of it in the
 * fsync that commit() must do (a 250 MiB layer: ~0.1 s of a 1 s pull). commit() still fsyncs.
 */
const flushEvery = 32 * 1024 * 1024;

/** A Writable into a temp file under tmp/ that hashes and counts what passes. */
class FileIngest extends Writable implements Ingest {
  readonly tmpPath: string;
  private fh: fsp.FileHandle | undefined;
  private readonly hash: Hash = createHash('sha256');
  /** Set by hashOnThread(): the digest is computed there instead of by `hash`. */
  private thread: ThreadHash | undefined;
  private count = 0;
  private unflushed = 0;
  /** The flush-behind fdatasync in flight, if any; it never rejects (see flushError). */
  private flushing: Promise<void> | undefined;
  private flushError: Error | undefined;
  private done: Promise<{ digest: Digest; size: number }> | undefined;
  private sealed: Promise<{ digest: Digest; size: number }> | undefined;

  constructor(private readonly blobs: FileBlobStore) {
    // autoDestroy off: the temp file must stay open after 'finish' until commit() has fsynced it.
    super({ autoDestroy: false, highWaterMark: ingestBuffer });
    this.tmpPath = join(blobs.tmpDir, `ingest-${randomId()}`);
  }

  override _construct(cb: (e?: Error | null) => void): void {
    fsp.open(this.tmpPath, 'wx', 0o444).then((fh) => {
      this.fh = fh;
      cb();
    }, cb);
  }

  hashOnThread(): void {
    if (this.count > 0) throw new Error('internal: hashOnThread() after a write');
    this.thread ??= new ThreadHash();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.count += chunk.length;
    const hashed = this.update(chunk);
    const wrote = writeAll(this.fh!, chunk);
    (hashed ? Promise.all([wrote, hashed]) : wrote).then(() => this.written(chunk.length, cb), cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    const bufs = chunks.map((c) => c.chunk);
    const hashed: Promise<void>[] = [];
    for (const b of bufs) {
      const h = this.update(b);
      if (h) hashed.push(h);
      this.count += b.length;
    }
    const n = bufs.reduce((a, b) => a + b.length, 0);
    Promise.all([writevAll(this.fh!, bufs), ...hashed]).then(() => this.written(n, cb), cb);
  }

  /** Hashes a chunk here, or hands it to the thread: a chunk is done with when the write's callback runs. */
  private update(b: Buffer): Promise<void> | undefined {
    if (!this.thread) {
      this.hash.update(b);
      return undefined;
    }
    return this.thread.update(b);
  }

  private written(n: number, cb: (e?: Error | null) => void): void {
    this.unflushed += n;
    if (this.unflushed >= flushEvery && !this.flushing && this.fh) {
      this.unflushed = 0;
      this.flushing = this.fh.datasync().then(
        () => (this.flushing = undefined),
        (e: Error) => {
          this.flushError ??= e;
          this.flushing = undefined;
        },
      );
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    // The thread has given its digest and gone, or (an abort) is stopped here.
    this.thread?.close();
    const fh = this.fh;
    this.fh = undefined;
    // Not closed under a flush-behind fdatasync still running on it in the thread pool.
    Promise.resolve(this.flushing)
      .then(() => fh?.close())
      .then(
        () => cb(err),
        () => cb(err),
      );
  }

  commit(expected: { digest?: Digest; size?: number } = {}): Promise<{ digest: Digest; size: number }> {
    this.done ??= this.doCommit(expected);
    return this.done;
  }

  digest(): Promise<{ digest: Digest; size: number }> {
    this.sealed ??= (async () => {
      if (!this.writableFinished) {
        await new Promise<void>((resolve, reject) => {
          if (this.destroyed) return reject(new StoreError('io', 'ingest was aborted'));
          this.once('error', reject);
          this.once('finish', () => resolve());
          if (!this.writableEnded) this.end();
        });
      }
      const hex = this.thread ? await this.thread.digest() : this.hash.digest('hex');
      return { digest: `sha256:${hex}` as Digest, size: this.count };
    })();
    return this.sealed;
  }

  private async doCommit(expected: { digest?: Digest; size?: number }): Promise<{ digest: Digest; size: number }> {
    try {
      if (expected.digest !== undefined) checkDigest(expected.digest, 'expected digest');
      const { digest, size } = await this.digest();
      if (expected.size !== undefined && expected.size !== size) {
        throw new StoreError(
          'invalid',
          `size mismatch for ${expected.digest ?? 'blob'}: expected ${expected.size} bytes, got ${size}`,
          expected.digest,
        );
      }
      if (expected.digest !== undefined && expected.digest !== digest) {
        throw new StoreError(
          'invalid',
          `digest mismatch: expected ${expected.digest}, got ${digest} (${size} bytes)`,
          expected.digest,
        );
      }
      const fh = this.fh!;
      this.fh = undefined;
      await this.flushing;
      if (this.flushError) throw this.flushError;
      await fh.sync();
      await fh.close();
      // In the lease before it is visible (leases.ts). Renaming over an existing copy is fine (same
      // bytes) and refreshes its mtime, which is what prune's grace period looks at. But that copy
      // may be one prune listed and is deciding on now, having read the leases before this entry:
      // so wait for the sweep to end first, as for reused content, or prune unlinks the new file.
      await this.blobs.held?.reuse('blob', digest);
      await fsp.rename(this.tmpPath, this.blobs.path(digest));
      await fsyncDir(this.blobs.dir);
      this.destroy();
      return { digest, size };
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  async abort(): Promise<void> {
    this.destroy();
    await new Promise<void>((r) => (this.closed ? r() : this.once('close', () => r())));
    await fsp.rm(this.tmpPath, { force: true });
  }
}

/** writev until every byte is out (a short write leaves the rest of a buffer, or whole buffers, to go). */
async function writevAll(fh: fsp.FileHandle, bufs: Buffer[]): Promise<void> {
  // IOV_MAX is 1024 on Linux; a 4 MiB queue of 64 KiB chunks is 64.
  for (let i = 0; i < bufs.length; i += 1024) {
    let batch = bufs.slice(i, i + 1024);
    while (batch.length) {
      let { bytesWritten } = await fh.writev(batch);
      while (batch.length && bytesWritten >= batch[0].length) bytesWritten -= batch.shift()!.length;
      if (batch.length && bytesWritten > 0) batch[0] = batch[0].subarray(bytesWritten);
    }
  }
}

async function writeAll(fh: fsp.FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}
