import type { Coded } from '@tsbuild/errdefs';
import type { Location } from './types.js';

/**
 * What inside an instruction an error is about. Errors are raised with the
 * instruction's location and this pointer; `locate.ts` turns it into a precise
 * span (lazily, on the error path) from the raw text ranges dockerfile-ast gives.
 */
export type At =
  | { kind: 'keyword' }
  /** The n-th (0-based) `--name` flag; `value`: just its value; `option`: one `key=` field of the value (`--mount`). */
  | { kind: 'flag'; name: string; nth: number; value?: boolean; option?: string }
  /**
   * node.args[index] of a keyword whose words are whitespace-split (FROM, WORKDIR, HEALTHCHECK, ...); `text`
   * cross-checks it.
   */
  | { kind: 'arg'; index: number; text: string }
  /** Raw text among the flags and arguments (the first candidate found). */
  | { kind: 'text'; texts: string[] }
  /** All the arguments after the flags. */
  | { kind: 'args' }
  /** Inside ONBUILD's trigger instruction. */
  | { kind: 'trigger'; pointer: Pointer };

/** `cmd` is the keyword as written, to check that the located instruction is the one meant. */
export type Pointer = { cmd: string; at: At };

/**
 * Every failure the parser reports: a stable `code` for programs, a sentence for
 * people, and the place in the Dockerfile it points at.
 */
export class DockerfileError extends Error implements Coded {
  /** A Dockerfile that cannot be built is a bad request. */
  readonly errdef = 'invalid';
  readonly code: string;
  readonly location: Location;
  /** @internal Where inside the instruction; resolved into `location` before the error leaves the package. */
  readonly pointer?: Pointer;

  constructor(code: string, message: string, location: Location, pointer?: Pointer) {
    super(message);
    this.name = 'DockerfileError';
    this.code = code;
    this.location = location;
    if (pointer) this.pointer = pointer;
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
