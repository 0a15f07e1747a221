// Errors that reach the person at the terminal. `exitCode` follows the contract:
// 1 when the build or operation failed, 2 for bad usage or bad input.
export class BuildError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
    /** Extra lines shown under the message (the tail of a failing RUN's output). */
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = 'BuildError';
  }
}

export function where(step: { location: { file: string; line: number; column: number } }): string {
  return `${step.location.file}:${step.location.line}:${step.location.column}`;
}

/** A bad flag or flag value: exit 2, with the usage message. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
