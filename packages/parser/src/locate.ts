import { createRequire } from 'node:module';
import type * as AST from 'dockerfile-ast';
import type { Dockerfile } from './ast.js';
import { DockerfileError } from './errors.js';
import type { At, Pointer } from './errors.js';
import type { Location } from './types.js';

// Precise error locations from dockerfile-ast's ranges.
//
// dockerfile-ast is an editor-tolerant parser: its *ranges* of keywords, flags
// (name, value, `key=value` fields of a value), argument words and ONBUILD
// triggers are right, but several of its *readings* are not BuildKit's (JSON
// strings lose spaces, `foo\\` at a line end is taken for a continuation,
// `ARG a b=c` is one property, `3<<EOF` is no heredoc, it never reports errors).
// So semantics stay with our own line reader (parse.ts, node.ts), and this file
// only asks dockerfile-ast "where is this flag / word / keyword?" about one
// instruction, after we already know what is wrong. Every answer is checked
// against what we expect to find there (the keyword as written, the flag's name,
// the word's text); when they disagree we search the raw text ourselves, and
// failing that keep the instruction's own location.
//
// It runs only on the error path: dockerfile-ast takes ~100-300 ms on a
// 1,000-instruction file where our parse takes ~10-70 ms, so it is loaded
// lazily and given only the physical lines of the failing instruction.

const require = createRequire(import.meta.url);
let lib: typeof AST | undefined;
const dockerfileAst = (): typeof AST => (lib ??= require('dockerfile-ast') as typeof AST);

/** The physical lines (each with its newline) and escape token a Dockerfile was parsed from. */
export interface Source {
  lines: string[];
  escape: string;
}

const sources = new WeakMap<Dockerfile, Source>();

export function rememberSource(df: Dockerfile, src: Source): void {
  sources.set(df, src);
}

/** The error with its pointer resolved into a precise location (or as it was), never carrying the pointer out. */
export function located(e: unknown, df: Dockerfile | Source | undefined): unknown {
  if (!(e instanceof DockerfileError) || !e.pointer) return e;
  const src = df === undefined ? undefined : 'lines' in df ? df : sources.get(df);
  const where = src ? refine(e.location, e.pointer, src) : undefined;
  const out = new DockerfileError(e.code, e.message, where ?? e.location);
  out.stack = e.stack;
  return out;
}

type Range = ReturnType<AST.Instruction['getRange']>;

interface Snippet {
  ins: AST.Instruction;
  /** Snippet line k is file line k + shift (both 0-based for k, 1-based result). */
  shift: number;
  lines: string[];
}

/** Parses only the instruction's own lines; undefined unless dockerfile-ast sees the same instruction there. */
function snippet(at: Location, cmd: string, src: Source): Snippet | undefined {
  const body = src.lines.slice(at.line - 1, at.endLine);
  if (body.length === 0) return undefined;
  const pre = src.escape === '`' ? ['# escape=`\n'] : [];
  const lines = [...pre, ...body];
  const df = dockerfileAst().DockerfileParser.parse(lines.join(''));
  const ins = df.getInstructions()[0];
  if (!ins) return undefined;
  const r = ins.getInstructionRange();
  if (r.start.line !== pre.length || r.start.character !== at.column - 1) return undefined;
  const s: Snippet = { ins, shift: at.line - pre.length, lines };
  if (textOf(s, r) !== cmd) return undefined;
  return s;
}

function textOf(s: Snippet, r: Range): string | undefined {
  if (r.start.line !== r.end.line) return undefined;
  return s.lines[r.start.line]?.slice(r.start.character, r.end.character);
}

function span(file: string, s: Snippet, r: Range): Location {
  return {
    file,
    line: r.start.line + s.shift,
    column: r.start.character + 1,
    endLine: r.end.line + s.shift,
    endColumn: r.end.character + 1,
  };
}

interface FlagRanges {
  name: string;
  all: Range;
  value: Range | null;
  options: { name: string; range: Range }[];
}

function hasFlags(ins: AST.Instruction): ins is AST.ModifiableInstruction {
  return typeof (ins as Partial<AST.ModifiableInstruction>).getFlags === 'function';
}

/**
 * The instruction's flags as dockerfile-ast ranges them. Instructions it does
 * not give flags to (WORKDIR, USER, CMD, ...) still have BuildKit flags: there
 * the leading `--words` of its argument list stand in.
 */
function flagsOf(ins: AST.Instruction): FlagRanges[] {
  const out: FlagRanges[] = hasFlags(ins)
    ? ins.getFlags().map((f) => ({
        name: f.getName(),
        all: f.getRange(),
        value: f.getValueRange(),
        options: f.getOptions().map((o) => ({ name: o.getName(), range: o.getRange() })),
      }))
    : [];
  if (out.length > 0) return out;
  for (const a of ins.getArguments()) {
    const v = a.getValue();
    if (!v.startsWith('--')) break;
    const r = a.getRange();
    const eq = v.indexOf('=');
    const single = r.start.line === r.end.line && r.end.character - r.start.character === v.length;
    const value =
      eq >= 0 && single ? { start: { line: r.start.line, character: r.start.character + eq + 1 }, end: r.end } : null;
    out.push({ name: eq < 0 ? v.slice(2) : v.slice(2, eq), all: r, value, options: [] });
  }
  return out;
}

/** Argument words after the flags. */
function argsOf(ins: AST.Instruction): AST.Argument[] {
  const args = ins.getArguments();
  if (hasFlags(ins) && ins.getFlags().length > 0) return args;
  let i = 0;
  while (i < args.length && args[i].getValue().startsWith('--')) i++;
  return args.slice(i);
}

function resolve(s: Snippet, at: At, file: string): Location | undefined {
  const ins = s.ins;
  switch (at.kind) {
    case 'keyword':
      return span(file, s, ins.getInstructionRange());
    case 'flag': {
      const f = flagsOf(ins).filter((x) => x.name === at.name)[at.nth];
      if (!f) return undefined;
      if (at.option !== undefined) {
        const o = f.options.find((x) => x.name.toLowerCase() === at.option);
        if (o) return span(file, s, o.range);
      }
      if (
        at.value &&
        f.value &&
        (f.value.start.line !== f.value.end.line || f.value.start.character < f.value.end.character)
      ) {
        return span(file, s, f.value);
      }
      return span(file, s, f.all);
    }
    case 'arg': {
      const a = argsOf(ins)[at.index];
      if (a && a.getValue() === at.text) return span(file, s, a.getRange());
      return resolve(s, { kind: 'text', texts: [at.text] }, file);
    }
    case 'text':
      return findText(s, at.texts, file);
    case 'args': {
      const r = ins.getArgumentsRange();
      const first = argsOf(ins)[0];
      if (!r || !first) return undefined;
      return span(file, s, { start: first.getRange().start, end: r.end });
    }
    case 'trigger': {
      const trigger = (ins as Partial<AST.Onbuild>).getTriggerInstruction?.();
      if (!trigger) return undefined;
      const kw = trigger.getInstructionRange();
      const inner: Snippet = { ...s, ins: trigger };
      if (textOf(inner, kw) !== at.pointer.cmd) return undefined;
      return resolve(inner, at.pointer.at, file);
    }
  }
}

/**
 * Our own search of the raw text, for the readings dockerfile-ast gets wrong
 * (ARG/ENV words, heredoc openers): first inside each flag and argument word it
 * ranges, then anywhere on the instruction's lines after the keyword.
 */
function findText(s: Snippet, texts: string[], file: string): Location | undefined {
  const words = [...flagsOf(s.ins).map((f) => f.all), ...s.ins.getArguments().map((a) => a.getRange())];
  const kw = s.ins.getInstructionRange();
  const last = s.ins.getRange().end.line;
  for (const t of texts) {
    if (t === '') continue;
    const whole = words.find((r) => textOf(s, r) === t);
    if (whole) return span(file, s, whole);
    for (const r of words) {
      const text = textOf(s, r);
      const k = text?.indexOf(t) ?? -1;
      if (k >= 0) return spanAt(s, file, r.start.line, r.start.character + k, t.length);
    }
    for (let l = kw.start.line; l <= last && l < s.lines.length; l++) {
      const from = l === kw.start.line ? kw.end.character : 0;
      const k = s.lines[l].indexOf(t, from);
      if (k >= 0) return spanAt(s, file, l, k, t.length);
    }
  }
  return undefined;
}

function spanAt(s: Snippet, file: string, line: number, character: number, length: number): Location {
  return span(file, s, { start: { line, character }, end: { line, character: character + length } });
}

/** The precise span a pointer names in the instruction at `at`, or undefined when it cannot be found for sure. */
export function refine(where: Location, pointer: Pointer, src: Source): Location | undefined {
  try {
    const s = snippet(where, pointer.cmd, src);
    return s ? resolve(s, pointer.at, where.file) : undefined;
  } catch {
    return undefined; // a locator must never turn one error into another
  }
}
