import { elapsed, now, type Reporter, type StepHandle } from './reporter.js';

/** Line by line, numbered like buildx's plain output, so logs read the same. */
export class PlainReporter implements Reporter {
  private next = 1;
  constructor(private readonly out: NodeJS.WritableStream = process.stderr) {}

  step(name: string): StepHandle {
    const id = this.next++;
    const start = now();
    const write = (s: string) => this.out.write(`#${id} ${s}\n`);
    write(name);
    return {
      log: (line) => write(`${((now() - start) / 1000).toFixed(3)} ${line}`),
      cached: () => write('CACHED'),
      done: () => write(`DONE ${elapsed(start)}`),
      fail: (message) => write(`ERROR: ${message}`),
    };
  }
  info(message: string): void {
    this.out.write(`${message}\n`);
  }
  warn(message: string): void {
    this.out.write(`WARNING: ${message}\n`);
  }
  close(): void {}
}

export class QuietReporter implements Reporter {
  step(): StepHandle {
    return { log() {}, cached() {}, done() {}, fail() {} };
  }
  info(): void {}
  warn(message: string): void {
    process.stderr.write(`WARNING: ${message}\n`);
  }
  close(): void {}
}
