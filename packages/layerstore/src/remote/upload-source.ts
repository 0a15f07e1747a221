// A blob from the store as a push reads it: sequential pieces, every byte from offset 0 hashed,
// and the piece holding the blob's last byte handed out only once the digest has matched.
// So a corrupt local blob never reaches a registry whole: the upload carrying it is cut one
// piece short, the registry can neither commit it nor answer for it, and the push fails with
// StoreError('corrupt'). That is the store's own verification (open() streams through ssri), moved
// to where it protects the socket: ssri only reports a mismatch after the last byte went through.
//
// Files are read straight into a small ring of reusable buffers when the store can name a blob's
// file (FileBlobStore.path). Fresh read buffers per piece cost more than the hashing: page faults
// on new memory are slow on this kind of VM (256 MiB through createReadStream: 430 ms of CPU at
// 64 KiB pieces, 110 ms at 1 MiB, 30 ms into one reused buffer). Other stores are read through
// open() with the same checks.
import { createHash, type Hash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { Readable } from 'node:stream';
import { StoreError, type BlobStore, type Descriptor, type Digest } from '../types.js';

/** A piece handed out stays valid while up to this many more are taken after it. */
export const sourceWindow = 3;
const pieceSize = 1024 * 1024;

interface Reader {
  /** Up to `max` bytes at the current position; empty at end of file. */
  read(max: number): Promise<Buffer>;
  /** Move past n bytes without returning them. */
  skip(n: number): Promise<void>;
  close(): Promise<void>;
}

/** How far a source got, and the hash of everything before that: a later source continues from it. */
export interface Checkpoint {
  position: number;
  hash: Hash;
}

/** A store that can name the file holding a blob (FileBlobStore). */
interface BlobFiles {
  path(digest: Digest): string;
}
const hasFiles = (b: BlobStore): b is BlobStore & BlobFiles => typeof (b as Partial<BlobFiles>).path === 'function';

/**
 * Reads a file into `sourceWindow + 1` buffers in turn, so a piece is overwritten by the read after the next
 * `sourceWindow`.
 */
class FileReader implements Reader {
  private readonly ring: Buffer[] = [];
  private next = 0;
  private pos = 0;
  constructor(
    private readonly fh: fsp.FileHandle,
    size: number,
  ) {
    const n = Math.max(1, Math.min(pieceSize, size));
    for (let i = 0; i <= sourceWindow; i++) this.ring.push(Buffer.allocUnsafeSlow(n));
  }
  async read(max: number): Promise<Buffer> {
    const buf = this.ring[this.next];
    this.next = (this.next + 1) % this.ring.length;
    const { bytesRead } = await this.fh.read(buf, 0, Math.min(max, buf.length), this.pos);
    this.pos += bytesRead;
    return buf.subarray(0, bytesRead);
  }
  async skip(n: number): Promise<void> {
    this.pos += n;
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

/** Reads the store's open() stream, split to the sizes asked for. */
class StreamReader implements Reader {
  private readonly it: AsyncIterator<Buffer>;
  private leftover: Buffer | undefined;
  constructor(private readonly stream: Readable) {
    this.it = stream[Symbol.asyncIterator]();
  }
  async read(max: number): Promise<Buffer> {
    let c = this.leftover;
    this.leftover = undefined;
    if (!c) {
      const r = await this.it.next();
      if (r.done) return Buffer.alloc(0);
      c = r.value;
    }
    if (c.length > max) {
      this.leftover = c.subarray(max);
      c = c.subarray(0, max);
    }
    return c;
  }
  async skip(n: number): Promise<void> {
    while (n > 0) {
      const c = await this.read(n);
      if (c.length === 0) return;
      n -= c.length;
    }
  }
  async close(): Promise<void> {
    this.stream.destroy();
  }
}

export class UploadSource {
  private hashed: number;
  private closed = false;
  /** The next byte handed out. */
  position: number;

  private constructor(
    private readonly reader: Reader,
    private readonly desc: Descriptor,
    private readonly file: string | undefined,
    start: number,
    private readonly hash: Hash,
    hashed: number,
  ) {
    this.position = start;
    this.hashed = hashed;
  }

  /**
   * Open `desc` for reading from `start`. The bytes before `start` are read and hashed but not
   * handed out, so a resumed upload is verified as a whole too — unless `from` is a checkpoint at
   * `start`, whose hash state carries on.
   */
  static async open(blobs: BlobStore, desc: Descriptor, start = 0, from?: Checkpoint): Promise<UploadSource> {
    let reader: Reader;
    const file = hasFiles(blobs) ? blobs.path(desc.digest) : undefined;
    if (file !== undefined) {
      let fh: fsp.FileHandle;
      try {
        fh = await fsp.open(file, 'r');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT')
          throw new StoreError('not-found', `blob ${desc.digest} not found`, desc.digest);
        throw e;
      }
      reader = new FileReader(fh, desc.size);
    } else {
      reader = new StreamReader(blobs.open(desc.digest));
    }
    const resume = from && from.position === start && start > 0 ? from : undefined;
    const source = new UploadSource(
      reader,
      desc,
      file,
      start,
      resume ? resume.hash.copy() : createHash('sha256'),
      resume ? start : 0,
    );
    try {
      if (resume) await reader.skip(start);
      if (desc.size === 0) source.verify();
      while (source.hashed < start) await source.pull(start - source.hashed);
    } catch (e) {
      await source.close();
      throw e;
    }
    return source;
  }

  private corrupt(why: string): StoreError {
    const which = this.file ? `${this.file} does not match its digest; remove it` : 'remove it';
    return new StoreError(
      'corrupt',
      `blob ${this.desc.digest} is corrupt (${why}): ${which} and pull/rebuild`,
      this.desc.digest,
    );
  }

  private async pull(max: number): Promise<Buffer> {
    const piece = await this.reader.read(Math.min(max, this.desc.size - this.hashed));
    if (piece.length === 0) throw this.corrupt(`${this.hashed} bytes, the manifest says ${this.desc.size}`);
    this.hash.update(piece);
    this.hashed += piece.length;
    if (this.hashed === this.desc.size) this.verify();
    return piece;
  }

  private verify(): void {
    const got = `sha256:${this.hash.digest('hex')}`;
    if (got !== this.desc.digest) throw this.corrupt(`its content has digest ${got}`);
  }

  /**
   * The next piece, at most `max` bytes (never past the end of the blob); undefined at the end.
   * Its memory may be reused by any take after the next `sourceWindow`: be done with it by then.
   */
  async take(max: number): Promise<Buffer | undefined> {
    if (this.closed) throw new Error('upload source is closed');
    if (this.position >= this.desc.size) return undefined;
    const piece = await this.pull(Math.max(1, max));
    this.position += piece.length;
    return piece;
  }

  /** Where this source is, to open the next one there without hashing the blob again. */
  checkpoint(): Checkpoint | undefined {
    return this.hashed < this.desc.size ? { position: this.position, hash: this.hash.copy() } : undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.reader.close().catch(() => {});
  }
}
