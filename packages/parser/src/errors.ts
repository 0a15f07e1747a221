import type { Location } from './types.js';

/**
 * Every failure the parser reports: a stable `code` for programs, a sentence for
 * people, and the place in the Dockerfile it points at.
 */
export class DockerfileError extends Error {
  readonly code: string;
  readonly location: Location;

  constructor(code: string, message: string, location: Location) {
    super(message);
    this.name = 'DockerfileError';
    this.code = code;
    this.location = location;
  }
}

/** `file:line:col: message`, the form editors and terminals can jump to. */
export function formatError(e: DockerfileError): string {
  const { file, line, column } = e.location;
  return `${file}:${line}:${column}: ${e.message}`;
}

export function loc(file: string, line: number, column = 1, endLine = line): Location {
  return { file, line, column, endLine };
}

/** A lexer error before it knows where it is; callers attach the location. */
export class ExpansionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpansionError';
  }
}
