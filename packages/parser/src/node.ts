import type { Instruction } from './ast.js';
import type { At, Pointer } from './errors.js';
import { isSpace } from './shell/chars.js';
import {
  NotStringArray,
  extractFlags,
  parseJSONArray,
  parseWords,
  reWhitespace,
  splitWhitespace,
  trimSpace,
} from './words.js';

/** A syntax error of one logical line; parse() adds the location. */
export class LineError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly at: At = { kind: 'keyword' },
    readonly cmd?: string,
  ) {
    super(message);
  }
  /** Where in the instruction, for locate.ts. */
  pointer(cmd: string): Pointer {
    return { cmd: this.cmd ?? cmd, at: this.at };
  }
}

type Args = { args: string[]; json: boolean; sub?: Instruction };
type Splitter = (rest: string, escape: string) => Args;

const none: Args = { args: [], json: false };

// Exec form when the text is a JSON array of strings, else one shell string.
const maybeJSON: Splitter = (rest) => {
  if (rest === '') return none;
  const list = json(rest);
  return list ? { args: list, json: true } : { args: [rest], json: false };
};

// Exec form, else whitespace-separated words with no quote handling.
const maybeJSONToList: Splitter = (rest) => {
  const list = json(rest);
  return list ? { args: list, json: true } : whitespaceDelimited(rest, '');
};

const whitespaceDelimited: Splitter = (rest) => (rest === '' ? none : { args: splitWhitespace(rest), json: false });
const oneString: Splitter = (rest) => (rest === '' ? none : { args: [rest], json: false });
const nameOrNameVal: Splitter = (rest, escape) => ({ args: parseWords(rest, escape), json: false });

function json(rest: string): string[] | undefined {
  try {
    return parseJSONArray(rest);
  } catch (e) {
    if (e instanceof NotStringArray)
      throw new LineError(
        'json-not-strings',
        'the JSON array must hold only strings (exec form takes ["executable", "arg", ...])',
        { kind: 'args' },
      );
    throw e;
  }
}

// ENV and LABEL: `key=value ...` pairs, or the legacy `key value with spaces`
// whose value is the raw rest of the line. Each pair becomes key, value, separator.
function nameVal(keyword: string): Splitter {
  return (rest, escape) => {
    const words = parseWords(rest, escape);
    if (words.length === 0) return none;
    if (!words[0].includes('=')) {
      const m = reWhitespace.exec(rest);
      if (!m)
        throw new LineError(
          keyword === 'ENV' ? 'env-no-value' : 'missing-value',
          `${keyword} must have two arguments`,
          { kind: 'args' },
        );
      return { args: [rest.slice(0, m.index), rest.slice(m.index + m[0].length), ''], json: false };
    }
    const args: string[] = [];
    for (const word of words) {
      const eq = word.indexOf('=');
      if (eq < 0)
        throw new LineError(
          'missing-equals',
          `Syntax error - can't find = in ${JSON.stringify(word)}. Must be of the form: name=value`,
          { kind: 'text', texts: [word] },
        );
      args.push(word.slice(0, eq), word.slice(eq + 1), '=');
    }
    return { args, json: false };
  };
}

// HEALTHCHECK: the type word (CMD, NONE, ...), then the rest as CMD would be.
const healthConfig: Splitter = (rest, escape) => {
  let sep = 0;
  while (sep < rest.length && !isSpace(rest[sep])) sep++;
  if (sep === 0) return none;
  let next = sep;
  while (next < rest.length && isSpace(rest[next])) next++;
  const cmd = maybeJSON(rest.slice(next), escape);
  return { args: [rest.slice(0, sep), ...cmd.args], json: cmd.json };
};

const subCommand: Splitter = (rest, escape) => {
  if (rest === '') return none;
  try {
    return { args: [], json: false, sub: nodeFromLine(rest, escape, true) };
  } catch (e) {
    // Errors of the trigger point inside it (ONBUILD's own keyword is checked by locate.ts).
    if (e instanceof LineError)
      throw new LineError(e.code, e.message, { kind: 'trigger', pointer: e.pointer(e.cmd ?? '') });
    throw e;
  }
};

export const splitters: Record<string, Splitter> = {
  ADD: maybeJSONToList,
  ARG: nameOrNameVal,
  CMD: maybeJSON,
  COPY: maybeJSONToList,
  ENTRYPOINT: maybeJSON,
  ENV: nameVal('ENV'),
  EXPOSE: whitespaceDelimited,
  FROM: whitespaceDelimited,
  HEALTHCHECK: healthConfig,
  LABEL: nameVal('LABEL'),
  MAINTAINER: oneString,
  ONBUILD: subCommand,
  RUN: maybeJSON,
  SHELL: maybeJSON,
  STOPSIGNAL: oneString,
  USER: oneString,
  VOLUME: maybeJSONToList,
  WORKDIR: oneString,
};

/**
 * One logical line to an instruction (no location or heredocs yet). `trigger`: the line is an ONBUILD
 * trigger, where an unknown instruction is kept (BuildKit's parser ignores one; only its instruction level
 * refuses it, and a trigger reaches that level when it is triggered, not when it is declared).
 */
export function nodeFromLine(line: string, escape: string, trigger = false): Instruction {
  const trimmed = trimSpace(line);
  const m = reWhitespace.exec(trimmed);
  const cmd = m ? trimmed.slice(0, m.index) : trimmed;
  let flags: string[] = [];
  let rest = '';
  if (m) {
    const r = extractFlags(trimmed.slice(m.index + m[0].length));
    flags = r.flags;
    rest = trimSpace(r.rest);
  }
  const keyword = cmd.toUpperCase();
  const split = splitters[keyword];
  if (!split && !trigger) {
    throw new LineError('unknown-instruction', `unknown instruction: ${cmd}`, { kind: 'keyword' }, cmd);
  }
  let r: Args;
  try {
    r = split ? split(rest, escape) : none;
  } catch (e) {
    if (e instanceof LineError && e.cmd === undefined) throw new LineError(e.code, e.message, e.at, cmd);
    throw e;
  }
  const { args, json, sub } = r;
  const node: Instruction = {
    keyword,
    cmd,
    flags,
    args,
    json,
    rest,
    heredocs: [],
    original: line,
    location: { file: '', line: 0, column: 0, endLine: 0 },
  };
  if (sub) node.sub = sub;
  return node;
}

/** RUN, COPY and ADD in shell form (also under ONBUILD) may carry heredocs. */
export function canContainHeredoc(node: Instruction): boolean {
  const n = node.keyword === 'ONBUILD' && node.sub ? node.sub : node;
  return (n.keyword === 'RUN' || n.keyword === 'COPY' || n.keyword === 'ADD') && !n.json;
}
