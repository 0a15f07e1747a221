// The one place an error becomes what the person at the terminal sees: a message and an exit status,
// chosen by the error's errdefs code (never by its class name). Every error line starts with `ERROR:`.
//
//   code                       tsbuild COMMAND     around a container (run, exec, start -a)
//   invalid                    2                   125
//   not-found, conflict,       1                   125
//   unavailable, failed,
//   unknown
//   internal (a bug)           1, says it is a bug 125, says it is a bug
//
// `exec` has docker exec's: 1 when there is no running container (not-found, conflict), 126 for any other
// failure, as its process then could not be started.
// Flags that `run` and `exec` reject are thrown before the container part starts, so they stay 2.
// The container's own 126/127 (its command cannot run / is not found) are its exit status, not ours.
import { codeOf, redactCredentials, type Code } from '@tsbuild/errdefs';

/**
 * `tsbuild`: the CLI's own statuses. `container`: tsbuild's failure around a container is docker's 125.
 * `exec`: docker exec's (1 for no running container, else 126).
 */
export type Contract = 'tsbuild' | 'container' | 'exec';

const statuses: Record<Code, number> = {
  invalid: 2,
  'not-found': 1,
  conflict: 1,
  unavailable: 1,
  failed: 1,
  internal: 1,
  unknown: 1,
};

export function exitFor(code: Code, contract: Contract = 'tsbuild'): number {
  if (contract === 'exec') return code === 'not-found' || code === 'conflict' ? 1 : 126;
  return contract === 'container' ? 125 : statuses[code];
}

export const PREFIX = 'ERROR:';
const BUG = 'a bug in tsbuild; please report it with the output of TSBUILD_DEBUG=1';

/** The lines for stderr (without colour) and the exit status. */
export function describeError(
  err: unknown,
  command: string,
  contract: Contract = 'tsbuild',
  opts: { debug?: boolean } = {},
): { code: Code; status: number; lines: string[] } {
  const code = codeOf(err);
  const e = err as { name?: unknown; message?: unknown; stack?: unknown; details?: unknown } | undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  let line: string;
  if (code === 'internal') line = `${command}: internal error (${BUG}): ${String(e?.name)}: ${message}`;
  else if (code === 'unknown') line = `${command}: ${message}`;
  else line = message;
  const lines = [`${PREFIX} ${line}`];
  if (Array.isArray(e?.details)) lines.push(...e.details.map((l) => `  > ${String(l)}`));
  if (opts.debug && typeof e?.stack === 'string') lines.push(e.stack);
  // Messages quote what was typed (-t VALUE, --cache-to ref=…): a password given as user:password@host
  // in one of them is never printed, whichever error quoted it.
  return { code, status: exitFor(code, contract), lines: lines.map(redactCredentials) };
}

/** Writes the error to stderr (the prefix red on a terminal) and returns the exit status. */
export async function report(err: unknown, command: string, contract: Contract = 'tsbuild'): Promise<number> {
  const d = describeError(err, command, contract, { debug: !!process.env.TSBUILD_DEBUG });
  // chalk only for a terminal, and only when there is an error to colour: it probes the terminal as it loads.
  const red = process.stderr.isTTY ? (await import('chalk')).default.red : (s: string) => s;
  process.stderr.write(`${red(PREFIX)}${d.lines.join('\n').slice(PREFIX.length)}\n`);
  return d.status;
}

/** For the lines tsbuild writes itself (a container whose command could not start). */
export function errorLine(message: string): string {
  return `${PREFIX} ${message}\n`;
}
