import chalk from 'chalk';
import type { Ora, default as OraFactory } from 'ora';
import { elapsed, now, type Reporter, type StepHandle } from './reporter.js';

interface Running {
  id: number;
  name: string;
  start: number;
  last?: string;
}

/**
 * One ora spinner for the whole build, whose text is every running step (stages run
 * concurrently, and separate spinners would erase each other's lines), each with its time
 * and its latest line of output. A finished step is printed above the spinner once, with a
 * mark, its duration, or CACHED.
 */
export class TtyReporter implements Reporter {
  private readonly spinner: Ora;
  private readonly running = new Map<number, Running>();
  private n = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `ora` is passed in (imported on demand) so that non-terminal runs never load it. */
  constructor(
    ora: typeof OraFactory,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.spinner = ora({ stream: sized(out), discardStdin: false, text: '' });
  }

  step(name: string): StepHandle {
    const r: Running = { id: ++this.n, name, start: now() };
    this.running.set(r.id, r);
    this.refresh();
    const finish = (symbol: string, suffix: string) => {
      if (!this.running.delete(r.id)) return;
      this.print(`${symbol} ${this.title(r)} ${suffix}`);
    };
    return {
      log: (line) => {
        r.last = line;
      },
      cached: () => finish(chalk.blue('≡'), chalk.blue('CACHED')),
      done: () => finish(chalk.green('✔'), chalk.dim(elapsed(r.start))),
      fail: (message) => finish(chalk.red('✘'), chalk.red(this.fit(message, 20))),
    };
  }

  info(message: string): void {
    this.print(message);
  }

  warn(message: string): void {
    this.print(`${chalk.yellow('WARNING:')} ${message}`);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.spinner.stop();
  }

  private title(r: Running): string {
    return `${chalk.dim(`[${r.id}]`)} ${this.fit(r.name, 16)}`;
  }

  /** Cuts plain text to the terminal's width (less room for what follows), so lines never wrap. */
  private fit(text: string, reserve: number): string {
    const width = Math.max(20, columns(this.out) - reserve);
    return text.length > width ? text.slice(0, width - 1) + '…' : text;
  }

  private print(line: string): void {
    this.spinner.clear();
    this.out.write(line + '\n');
    this.refresh();
  }

  private refresh(): void {
    if (this.running.size === 0) {
      this.close();
      return;
    }
    this.spinner.text = [...this.running.values()]
      .map(
        (r) =>
          `${this.title(r)} ${chalk.dim(elapsed(r.start))}` + (r.last ? `\n    ${chalk.dim(this.fit(r.last, 8))}` : ''),
      )
      .join('\n');
    if (!this.spinner.isSpinning) this.spinner.start();
    else this.spinner.render();
    this.timer ??= setInterval(() => this.refresh(), 200).unref();
  }
}

/** The terminal's width; a pty without a size (0 columns: `script`, some CI runners) is taken as 80 wide. */
function columns(out: NodeJS.WriteStream): number {
  return out.columns || 80;
}

/**
 * The terminal as ora draws on it, `columns` wide. ora counts the lines it must clear as each line's width over
 * the stream's columns: over a pty's 0, Infinity, and a redraw that never ended (--progress=tty there).
 */
function sized(out: NodeJS.WriteStream): NodeJS.WriteStream {
  const view = {
    isTTY: out.isTTY,
    get columns() {
      return columns(out);
    },
    write: (chunk: string) => out.write(chunk),
    cursorTo: (x: number, y?: number) => out.cursorTo(x, y),
    moveCursor: (dx: number, dy: number) => out.moveCursor(dx, dy),
    clearLine: (dir: -1 | 0 | 1) => out.clearLine(dir),
  };
  // What ora uses of a stream (its index.js: write, isTTY, columns and the three cursor moves), no more.
  return view as unknown as NodeJS.WriteStream;
}
