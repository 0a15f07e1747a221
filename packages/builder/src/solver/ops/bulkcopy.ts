// Copies many context files into a staging dir with tsbuild-copy (native/copy.c) in a child process: it runs on
// the other core while the layer is written straight from the context. It replaced `cp --parents`: ~6 syscalls
// per file instead of ~13, and every path opened beneath a directory fd without following a symlink, in the
// context (untrusted: a directory swapped for a link mid-build) and in the staging dir alike.
import { spawn } from 'node:child_process';
import { nativeProgram } from '../../native.js';
import { displayName } from '../../context/listing.js';

/** A file or a symlink to copy (what the copier is told it is, and checks). */
export type CopyKind = 'file' | 'symlink';

interface Job {
  /** The copied directory below the context's root, and where it goes below the staging root. */
  item: string;
  target: string;
  list: NameList;
}

/**
 * Names for the copier as one buffer (a kind byte, the path, a NUL each) rather than a string per file: what
 * placeTree (place.ts) keeps of a tree of any size until the copy has run.
 */
export class NameList {
  private buf = Buffer.allocUnsafe(1 << 16);
  private at = 0;
  count = 0;

  add(rel: string, kind: CopyKind): void {
    const need = Buffer.byteLength(rel) + 2;
    if (this.at + need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + need));
      this.buf.copy(grown, 0, 0, this.at);
      this.buf = grown;
    }
    this.buf[this.at++] = kind === 'file' ? 0x66 : 0x6c; // 'f', 'l'
    this.at += this.buf.write(rel, this.at);
    this.buf[this.at++] = 0;
    this.count++;
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

/** Bytes kept of the start and of the end of what the copier says. */
const SaidKept = 8192;

export class BulkCopy {
  private readonly jobs = new Map<string, Job>();

  /**
   * Copies from below `from` (the build context's root) to below `to` (the staging root). `copier`: the
   * program to run, tsbuild-copy unless a test says otherwise.
   */
  constructor(
    private readonly from: string,
    private readonly to: string,
    private readonly copier: string | undefined = nativeProgram('tsbuild-copy'),
  ) {}

  /**
   * Copy `from/item/rel` to `to/target/rel` (a file or symlink). Directories on the way that the staging dir
   * lacks are made with their context directory's mode; `item` and `target` (relative, '' for the root) must
   * be directories already.
   */
  add(item: string, target: string, rel: string, kind: CopyKind): void {
    this.job(item, target).list.add(rel, kind);
  }

  /** Copy every name of `list` (as add() does each); `target` must not have other jobs from the same `item`. */
  addList(item: string, target: string, list: NameList): void {
    const key = `${item}\0${target}`;
    if (this.jobs.has(key)) throw new Error('internal: a name list beside names added one by one');
    this.jobs.set(key, { item, target, list });
  }

  private job(item: string, target: string): Job {
    const key = `${item}\0${target}`;
    let job = this.jobs.get(key);
    if (!job) this.jobs.set(key, (job = { item, target, list: new NameList() }));
    return job;
  }

  /** Whether the copier is there (built); without it the caller places files itself (place.ts, slower). */
  get available(): boolean {
    return this.copier !== undefined;
  }

  get empty(): boolean {
    return this.jobs.size === 0;
  }

  /**
   * Runs every job added so far (and forgets them), one after the other; owner is this process's (root: 0:0,
   * as COPY wants), mode and times kept, links not followed. The copier shares a job among threads on every
   * core: creating files is system time that a second core shortens, and the copy is what the next step
   * waits for. The first file that cannot be copied fails the copy, naming it.
   */
  async run(): Promise<void> {
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    for (const job of jobs) if (job.list.count > 0) await this.copy(job);
  }

  private copy(job: Job): Promise<void> {
    const copier = this.copier;
    if (!copier)
      return Promise.reject(new Error('tsbuild-copy is missing (packages/builder/native/build): build the package'));
    return new Promise((resolve, reject) => {
      const child = spawn(copier, [this.from, job.item, this.to, job.target], { stdio: ['pipe', 'ignore', 'pipe'] });
      // The copier says one line, which may name a path of any length: its start and its end (the reason) are kept.
      let head = Buffer.alloc(0);
      let tail = Buffer.alloc(0);
      let cut = false;
      child.stderr.on('data', (b: Buffer) => {
        const take = b.subarray(0, Math.max(0, SaidKept - head.length));
        head = Buffer.concat([head, take]);
        tail = Buffer.concat([tail, b.subarray(take.length)]);
        if (tail.length <= SaidKept) return;
        tail = tail.subarray(tail.length - SaidKept);
        cut = true;
      });
      child.on('error', (e) => reject(new Error(`cannot run ${copier}: ${(e as NodeJS.ErrnoException).code}`)));
      child.on('close', (code, signal) => {
        if (code === 0) return resolve();
        // The name as it is in the context: its control characters (a newline, a terminal's escapes) escaped.
        const line = displayName(
          `${head.toString()}${cut ? '…' : ''}${tail.toString()}`.trim().replace(/^tsbuild-copy: /, ''),
        );
        const why = line || `tsbuild-copy ${signal ? `was killed by ${signal}` : `exited ${code}`}`;
        reject(
          new Error(`copying from the build context failed: ${job.item ? `${displayName(job.item)}/` : ''}${why}`),
        );
      });
      child.stdin.on('error', () => {});
      child.stdin.end(job.list.bytes());
    });
  }
}
