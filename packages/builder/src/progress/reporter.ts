// What the build tells a person while it runs. Three media: a TTY (spinner per running
// step), plain lines for CI and logs (buildx's `#N` style), or nothing.

export interface StepHandle {
  /** A line of the step's output (RUN stdout/stderr). */
  log(line: string): void;
  cached(): void;
  done(): void;
  fail(message: string): void;
}

export interface Reporter {
  step(name: string): StepHandle;
  info(message: string): void;
  warn(message: string): void;
  /** Stop spinners before the final summary or an error is printed. */
  close(): void;
}

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'quiet';

export function resolveMode(
  mode: ProgressMode,
  stream: NodeJS.WriteStream = process.stderr,
): 'tty' | 'plain' | 'quiet' {
  if (mode !== 'auto') return mode;
  if (process.env.CI && process.env.CI !== 'false') return 'plain';
  // A pty without a size (some CI runners, `script` without a terminal) cannot be redrawn.
  return stream.isTTY && (stream.columns ?? 0) > 0 ? 'tty' : 'plain';
}

/**
 * Milliseconds on a monotonic clock. Not performance.now(): that global loads perf_hooks, a millisecond of every start.
 */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function elapsed(start: number): string {
  return `${((now() - start) / 1000).toFixed(1)}s`;
}
