import chalk from 'chalk';
import ora, { type Ora } from 'ora';
import { elapsed, type Reporter, type StepHandle } from './reporter.js';

/**
 * One line per step: a spinner while it runs, then a mark, its duration and CACHED where it
 * was a hit. RUN output is shown dimmed under the running step's spinner text (last line only),
 * and kept so a failure can print the tail.
 */
export class TtyReporter implements Reporter {
  private spinners = new Set<Ora>();
  private n = 0;

  step(name: string): StepHandle {
    const id = ++this.n;
    const start = performance.now();
    const label = `${chalk.dim(`[${id}]`)} ${name}`;
    const spinner = ora({ text: label, stream: process.stderr, discardStdin: false }).start();
    this.spinners.add(spinner);
    const finish = () => this.spinners.delete(spinner);
    return {
      log: (line) => {
        spinner.text = `${label}\n    ${chalk.dim(line.slice(0, (process.stderr.columns ?? 100) - 6))}`;
      },
      cached: () => {
        spinner.stopAndPersist({ symbol: chalk.blue('≡'), text: `${label} ${chalk.blue('CACHED')}` });
        finish();
      },
      done: () => {
        spinner.stopAndPersist({ symbol: chalk.green('✔'), text: `${label} ${chalk.dim(elapsed(start))}` });
        finish();
      },
      fail: (message) => {
        spinner.stopAndPersist({ symbol: chalk.red('✘'), text: `${label} ${chalk.red(message)}` });
        finish();
      },
    };
  }
  info(message: string): void {
    this.withPaused(() => process.stderr.write(`${message}\n`));
  }
  warn(message: string): void {
    this.withPaused(() => process.stderr.write(`${chalk.yellow('WARNING:')} ${message}\n`));
  }
  close(): void {
    for (const s of this.spinners) s.stop();
    this.spinners.clear();
  }
  private withPaused(fn: () => void) {
    for (const s of this.spinners) s.clear();
    fn();
    for (const s of this.spinners) s.render();
  }
}
