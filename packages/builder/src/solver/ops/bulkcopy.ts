// Copies many context files into a staging dir with GNU cp in a child process: it runs on
// the other core while the layer is written straight from the context, and cp is 2.5x faster
// than Node's copyFile for small files (fewer syscalls per file).
import { spawn } from 'node:child_process';

interface Job {
  from: string;
  to: string;
  rels: string[];
}

export class BulkCopy {
  private readonly jobs = new Map<string, Job>();

  /** Copy `from/rel` to `to/rel` (a file or symlink; its parent dirs already exist under `to`). */
  add(from: string, to: string, rel: string): void {
    const key = `${from}\0${to}`;
    let job = this.jobs.get(key);
    if (!job) this.jobs.set(key, (job = { from, to, rels: [] }));
    job.rels.push(rel);
  }

  get empty(): boolean {
    return this.jobs.size === 0;
  }

  /**
   * Runs every job added so far (and forgets them); owner is the caller (root: 0:0, as COPY
   * wants), mode and times kept, links not
   * followed. A large job runs as two cp processes, split between top-level directories so that
   * no directory is made by both (`--parents` makes the missing ones): creating files is system
   * time that a second core shortens, and cp is what the next step waits for.
   */
  async run(): Promise<void> {
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    for (const job of jobs) {
      // Both halves end before the first failure is thrown: the caller then removes the target,
      // and a cp still writing into it would race that.
      const failed = (await Promise.allSettled(split(job).map(copyJob))).find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
  }
}

const SPLIT_AT = 2000;

function split(job: Job): Job[] {
  if (job.rels.length < SPLIT_AT) return [job];
  const top = (rel: string) => {
    const i = rel.indexOf('/');
    return i === -1 ? rel : rel.slice(0, i);
  };
  let cut = job.rels.length >> 1;
  while (cut < job.rels.length && top(job.rels[cut]) === top(job.rels[cut - 1])) cut++;
  if (cut === job.rels.length) return [job];
  return [
    { ...job, rels: job.rels.slice(0, cut) },
    { ...job, rels: job.rels.slice(cut) },
  ];
}

function copyJob(job: Job): Promise<void> {
  return new Promise((resolve, reject) => {
    // ./ keeps a name that starts with '-' from being read as an option. --remove-destination: an
    // earlier job (another source of the same COPY) may have left a symlink at a file's name, and
    // cp would open it and write wherever it points (on the host); this unlinks it first. The
    // directories on the way are real: the builder made them beneath the staging fd before any
    // job ran (or cp --parents made them, for a COPY of one directory), and cp never puts a link
    // in place of a directory.
    const cp = ['cp', '-P', '--preserve=mode,timestamps', '--remove-destination', '--parents', '-t', job.to];
    const child = spawn('xargs', ['-0', ...cp], { cwd: job.from, stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b) => (err = (err + b).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`copying from the build context failed: ${err.trim() || `cp exited ${code}`}`)),
    );
    child.stdin.on('error', () => {});
    child.stdin.end(job.rels.map((r) => `./${r}\0`).join(''));
  });
}
