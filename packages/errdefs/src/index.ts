// What kind of failure an error is, as a small closed set of codes that every package tags its errors
// with (containerd's errdefs, in TypeScript). The CLI maps a code to an exit status and a message
// prefix in one place; nothing classifies an error by its class name.
//
// The tag is the property `errdef`, not `code`: the packages' classes already use `code` for their
// own finer vocabularies (DockerfileError's 'unknown-instruction', StoreError's 'corrupt', Node's
// 'ENOENT'), and those stay as they are.

export const codes = ['invalid', 'not-found', 'conflict', 'unavailable', 'failed', 'internal', 'unknown'] as const;

/**
 * - `invalid`: the request is wrong — a flag, a Dockerfile, a reference as the user wrote it. Exit 2.
 * - `not-found`: what was asked for does not exist (an image, a container, a volume).
 * - `conflict`: it exists already, or is in a state that forbids the operation (a name in use, running).
 * - `unavailable`: something tsbuild needs is not there or not answering (the sandbox, the network, a lock).
 * - `failed`: the operation ran and failed — a RUN step exited non-zero, a pulled layer or an archive is
 *   bad data (bad input from outside, not a bad request).
 * - `internal`: a bug in tsbuild (a TypeError, ReferenceError, RangeError, ... that no code of ours threw).
 * - `unknown`: an error nobody classified (a plain Error, a Node system error).
 */
export type Code = (typeof codes)[number];

/** An error that says what kind of failure it is. Any class can implement it by carrying `errdef`. */
export interface Coded {
  readonly errdef: Code;
}

/** A plain error with a code, for the places that have no class of their own. */
export class CodedError extends Error implements Coded {
  constructor(
    readonly errdef: Code,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CodedError';
  }
}

export function isCode(v: unknown): v is Code {
  return typeof v === 'string' && (codes as readonly string[]).includes(v);
}

// The error classes the JavaScript engine (and Node's argument checks) throw for programming mistakes.
// Checked with instanceof against the real globals, never by name: a class of ours named
// 'ReferenceError' is not one.
const bugClasses = [TypeError, ReferenceError, RangeError, SyntaxError, EvalError, URIError];

/**
 * The code of an error: its own `errdef`, else the first one down its `cause` chain (a plain Error that
 * wraps a coded one keeps the cause's code); else `internal` when the chain holds an engine error
 * (a bug), else `unknown`.
 */
export function codeOf(err: unknown): Code {
  let bug = false;
  const seen = new Set<unknown>();
  for (let e = err; e !== null && typeof e === 'object' && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    const tag = (e as Partial<Coded>).errdef;
    if (isCode(tag)) return tag;
    if (bugClasses.some((c) => e instanceof c)) bug = true;
  }
  return bug ? 'internal' : 'unknown';
}

export const isInvalid = (err: unknown): boolean => codeOf(err) === 'invalid';
export const isNotFound = (err: unknown): boolean => codeOf(err) === 'not-found';
export const isConflict = (err: unknown): boolean => codeOf(err) === 'conflict';
export const isUnavailable = (err: unknown): boolean => codeOf(err) === 'unavailable';
export const isFailed = (err: unknown): boolean => codeOf(err) === 'failed';
export const isInternal = (err: unknown): boolean => codeOf(err) === 'internal';

// userinfo with a password (`user:password@`) in front of a registry host; a user name alone is no secret and is
// kept (DOCKER_HOST=ssh://user@host). The password may hold @ itself: the userinfo runs to the last @ before a
// host. After a scheme (kept), as in a URL, it holds no / (so https://host/@scope/pkg is a path); in a reference
// (user:pass/word@host/app) it may.
// A digest after the `@` (name:tag@sha256:…) is a reference, not a host, and is left alone.
const hostAfter = String.raw`(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::[0-9]+)?(?=[/\s"',]|$)`;
const userinfo = new RegExp(
  String.raw`(^|[\s"'=,])(?:([A-Za-z][A-Za-z0-9+.-]*://)[^\s"'=,/:]*:[^\s"'=,/]+|` +
    String.raw`(?![A-Za-z][A-Za-z0-9+.-]*://)[^\s"'=,:]*:[^\s"'=,]+)@` +
    String.raw`(?![a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,})(?=${hostAfter})`,
  'g',
);

/**
 * `text` with any credentials in front of a registry host replaced by `***`: a person may type
 * `user:password@host` where a registry or reference is expected, and what tsbuild prints (errors that
 * quote the argument, logs kept by CI) must never carry the password.
 */
export function redactCredentials(text: string): string {
  return text.replace(userinfo, '$1$2***@');
}
