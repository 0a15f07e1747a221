// A minimal BlobStore over a temp directory for the layer tests, so they do not depend on
// the store core. Same contract: nothing is visible until commit() verified and renamed it.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync } from 'node:fs';
import { readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { StoreError, type BlobStore, type Digest, type Ingest } from '../../src/types.js';

export class TempBlobs implements BlobStore {
  readonly dir: string;
  constructor(dir = mkdtempSync(join(tmpdir(), 'blobs-'))) {
    this.dir = dir;
    mkdirSync(join(dir, 'sha256'), { recursive: true });
    mkdirSync(join(dir, 'tmp'), { recursive: true });
  }
  path(d: Digest): string {
    return join(this.dir, 'sha256', d.slice(7));
  }
  async has(d: Digest) {
    return stat(this.path(d)).then(
      () => true,
      () => false,
    );
  }
  async size(d: Digest) {
    return stat(this.path(d)).then(
      (s) => s.size,
      () => undefined,
    );
  }
  open(d: Digest): Readable {
    const hash = createHash('sha256');
    const check = new Transform({
      transform(chunk, _e, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
      flush(cb) {
        const got = `sha256:${hash.digest('hex')}`;
        cb(got === d ? null : new StoreError('corrupt', `blob ${d} hashes to ${got}`, d));
      },
    });
    const src = createReadStream(this.path(d));
    src.on('error', (e) => check.destroy(e));
    return src.pipe(check);
  }
  ingest(): Ingest {
    const tmp = join(this.dir, 'tmp', randomBytes(8).toString('hex'));
    const hash = createHash('sha256');
    let size = 0;
    const ws = createWriteStream(tmp);
    const t = new Transform({
      transform(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        size += chunk.length;
        // A copy: the write's callback (called when this returns) lets the caller reuse the chunk
        // before the file stream has written it (Ingest's contract).
        cb(null, Buffer.from(chunk));
      },
    });
    t.pipe(ws);
    const finished = new Promise<void>((res, rej) => {
      ws.on('finish', res);
      ws.on('error', rej);
    });
    const self = this;
    return Object.assign(t, {
      async commit(expected?: { digest?: Digest; size?: number }) {
        await finished;
        const digest = `sha256:${hash.digest('hex')}` as Digest;
        if (expected?.digest && expected.digest !== digest) throw new StoreError('corrupt', `got ${digest}`);
        await rename(tmp, self.path(digest));
        return { digest, size };
      },
      async abort() {
        t.destroy();
        await rm(tmp, { force: true });
      },
    }) as unknown as Ingest;
  }
  async put(bytes: Buffer | string) {
    const b = Buffer.from(bytes);
    const digest = `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
    const { writeFile } = await import('node:fs/promises');
    await writeFile(this.path(digest), b);
    return { digest, size: b.length };
  }
  async read(d: Digest) {
    return readFile(this.path(d));
  }
  async readJSON<T>(d: Digest): Promise<T> {
    return JSON.parse((await this.read(d)).toString()) as T;
  }
  async cleanup() {
    await rm(this.dir, { recursive: true, force: true });
  }
}
