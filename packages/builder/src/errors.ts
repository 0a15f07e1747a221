// Errors that reach the person at the terminal. Each carries an errdefs code; the CLI's one table
// (cli/report.ts) turns it into the exit status: `invalid` is 2, `failed` and the rest 1.
import type { Code, Coded } from '@tsbuild/errdefs';

export class BuildError extends Error implements Coded {
  readonly errdef: Code;
  constructor(
    message: string,
    /** The code, or the older spelling by exit status: 2 for bad input (`invalid`), 1 for a failure (`failed`). */
    code: Code | 1 | 2 = 'failed',
    /** Extra lines shown under the message (the tail of a failing RUN's output). */
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = 'BuildError';
    this.errdef = code === 2 ? 'invalid' : code === 1 ? 'failed' : code;
  }
}

export function where(step: { location: { file: string; line: number; column: number } }): string {
  return `${step.location.file}:${step.location.line}:${step.location.column}`;
}

/** A bad flag or flag value: exit 2, with the usage message. */
export class UsageError extends Error implements Coded {
  readonly errdef = 'invalid';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
