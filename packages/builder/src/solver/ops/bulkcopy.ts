// Copies many context files into a staging dir with tsbuild-copy (native/copy.c) in a child process: it runs on
// the other core while the layer is written straight from the context. It replaced `cp --parents`: ~6 syscalls
// per file instead of ~13, and every path opened beneath a directory fd without following a symlink, in the
// context (untrusted: a directory swapped for a link mid-build) and in the staging dir alike.
import { spawn } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';
import { nativeProgram } from '../../native.js';
import { displayName } from '../../context/listing.js';
import { unnamedFile } from '../../context/walk.js';

/** A file or a symlink to copy (what the copier is told it is, and checks). */
export type CopyKind = 'file' | 'symlink';

interface Job {
  /** The copied directory below the context's root, and where it goes below the staging root. */
  item: string;
  target: string;
  list: NameList;
}

/**
 * Names for the copier as bytes (a kind byte, the path, a NUL each) rather than a string per file: what placeTree
 * (place.ts) keeps of a tree of any size until the copy has run. Past 64 KiB they go to an unnamed temp file, which
 * becomes the copier's stdin: the names of a 200,000-file tree (8 MB) were held while its layer was written, at the
 * build's peak resident set. Where no such file can be made, they stay in memory.
 */
export class NameList {
  private buf = Buffer.allocUnsafe(Pending);
  private at = 0;
  /** The temp file holding the names before `buf`'s, and how many bytes it has. */
  private fd: number | undefined;
  private spilled = 0;
  private noFile = false;
  count = 0;

  /** @param file makes the temp file (undefined: none can be made) */
  constructor(private readonly file: () => number | undefined = unnamedFile) {}

  add(rel: string, kind: CopyKind): void {
    const need = Buffer.byteLength(rel) + 2;
    if (this.at + need > this.buf.length && !this.putAway()) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + need));
      this.buf.copy(grown, 0, 0, this.at);
      this.buf = grown;
    }
    if (this.at + need > this.buf.length) this.buf = Buffer.allocUnsafe(need);
    this.buf[this.at++] = kind === 'file' ? 0x66 : 0x6c; // 'f', 'l'
    this.at += this.buf.write(rel, this.at);
    this.buf[this.at++] = 0;
    this.count++;
  }

  /**
   * The names for the copier's stdin: the temp file (read from its start; the caller closes it), or the bytes.
   * Adds no more after this.
   */
  input(): { fd: number } | { bytes: Buffer } {
    if (this.fd === undefined || !this.putAway()) return { bytes: this.bytes() };
    const fd = this.fd;
    this.fd = undefined;
    return { fd };
  }

  /** The names in memory (all of them unless some went to the temp file). */
  bytes(): Buffer {
    if (this.fd !== undefined) throw new Error('internal: the names are in a temp file (input())');
    return this.buf.subarray(0, this.at);
  }

  /** Lets go of the temp file, if any (input() hands it over instead). */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Moves the names in `buf` to the temp file; false when there is none (and none can be made). */
  private putAway(): boolean {
    if (this.fd === undefined && !this.noFile) {
      this.fd = this.file();
      this.noFile = this.fd === undefined;
    }
    if (this.fd === undefined) return false;
    try {
      for (let done = 0; done < this.at;)
        done += writeSync(this.fd, this.buf, done, this.at - done, this.spilled + done);
    } catch (e) {
      // Names already in the file cannot be taken back: a failed write fails the copy that needs them.
      this.close();
      throw new Error(`cannot keep the copier's names in a temp file: ${(e as NodeJS.ErrnoException).code}`);
    }
    this.spilled += this.at;
    this.at = 0;
    return true;
  }
}

/** Names gathered in memory before they go to the temp file. */
const Pending = 1 << 16;

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
    try {
      for (const job of jobs) if (job.list.count > 0) await this.copy(job);
    } finally {
      for (const job of jobs) job.list.close();
    }
  }

  private copy(job: Job): Promise<void> {
    const copier = this.copier;
    if (!copier)
      return Promise.reject(new Error('tsbuild-copy is missing (packages/builder/native/build): build the package'));
    const input = job.list.input();
    return new Promise((resolve, reject) => {
      const stdin = 'fd' in input ? input.fd : 'pipe';
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(copier, [this.from, job.item, this.to, job.target], { stdio: [stdin, 'ignore', 'pipe'] });
      } finally {
        if ('fd' in input) closeSync(input.fd); // the copier has its own
      }
      // The copier says one line, which may name a path of any length: its start and its end (the reason) are kept.
      let head = Buffer.alloc(0);
      let tail = Buffer.alloc(0);
      let cut = false;
      child.stderr!.on('data', (b: Buffer) => {
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
      if ('bytes' in input) {
        child.stdin!.on('error', () => {});
        child.stdin!.end(input.bytes);
      }
    });
  }
}
