// A sha256 computed on a worker thread, for an ingest of a large layer: the main thread of a build tars the
// files, and hashing 175 MB of tar there was the largest part of a 20,000-file COPY's layer write after the
// reads (0.15-0.25 s), while the second core waited for it. The worker hashes what it is sent, in order,
// with the same OpenSSL sha256 the main thread would use.
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';

// Evaluated as CommonJS in the worker: no file to find next to a bundle.
const SOURCE = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
parentPort.on('message', (m) => {
  if (m === null) {
    parentPort.postMessage(hash.digest('hex'));
    parentPort.close();
    return;
  }
  hash.update(m);
  parentPort.postMessage(0);
});
`;

export class ThreadHash {
  private readonly worker = new Worker(SOURCE, { eval: true });
  /** One per update not yet hashed, oldest first: the worker answers each message in order. */
  private readonly acks: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private final: { resolve: (hex: string) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private ended = false;

  constructor() {
    this.worker.on('message', (m: unknown) => {
      if (typeof m === 'string') this.final?.resolve(m);
      else this.acks.shift()?.resolve();
    });
    // Making the worker's isolate set V8's --semi-space-growth-factor back to at least 2 for the whole process
    // (V8's Heap::ConfigureHeap): the flags the CLI's loader (builder's bin/tsbuild.cjs) chose are set again.
    this.worker.once('online', () => {
      const flags: unknown = (globalThis as Record<symbol, unknown>)[Symbol.for('tsbuild.v8-flags')];
      if (typeof flags === 'string') setFlagsFromString(flags);
    });
    this.worker.on('error', (e: Error) => this.fail(e));
    this.worker.on('exit', () => this.fail(new Error('the hashing thread exited')));
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const a of this.acks.splice(0)) a.reject(e);
    this.final?.reject(e);
  }

  /**
   * Hashes `buf` after everything given before. Memory a SharedArrayBuffer backs is read by the worker where it
   * is, so it must stay as it is until the returned promise settles; other memory is copied at once.
   */
  update(buf: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.reject(new Error('internal: update() after digest()'));
    return new Promise((resolve, reject) => {
      this.acks.push({ resolve, reject });
      if (buf.buffer instanceof SharedArrayBuffer) return this.worker.postMessage(buf);
      const copy = new Uint8Array(buf);
      this.worker.postMessage(copy, [copy.buffer]);
    });
  }

  /** The hex digest of everything updated; the worker then exits. */
  digest(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.reject(new Error('internal: digest() twice'));
    this.ended = true;
    return new Promise((resolve, reject) => {
      this.final = { resolve, reject };
      this.worker.postMessage(null);
    });
  }

  /** Stops the worker (an aborted ingest); pending updates and digest reject. */
  close(): void {
    this.ended = true;
    this.fail(new Error('the ingest was aborted'));
    void this.worker.terminate();
  }
}
