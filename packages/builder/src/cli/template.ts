// The Go text/template subset that docker's --format takes (`docker inspect --format '{{.Id}}'`), over
// plain JSON-shaped data: fields (`.A.B`, `$`, `$x`), pipelines, `if`/`else if`/`else`, `range` (with
// `$i, $v :=` and `else`), `with`, variables, comments, `{{-`/`-}}` trimming, and the functions scripts
// use: docker's json, join, split, upper, lower, title, and Go's index, len, print, println, printf
// (%s %d %v %q only), eq, ne, lt, le, gt, ge, and, or, not. Values print as Go prints them: slices
// `[a b]`, maps `map[k:v]` with sorted keys, nil `<nil>`.
//
// Written here rather than taken from npm: the ports there cover fields, if, range and index only, or
// compile a template to JavaScript for eval (see the README); docker's output is Go's %v, which matters.
//
// Go's typed structs print nil slices as `[]` and nil maps as `map[]`, while their JSON omits them or
// says null: `nilList`/`nilMap` stand for such fields (see inspect's data), `emptyStruct` for `{}`.
import { UsageError } from '../errors.js';

export class Nil {
  constructor(readonly printed: string) {}
  /** JSON.stringify leaves the field out (Go's omitempty); alone it prints as null (see json). */
  toJSON(): undefined {
    return undefined;
  }
}
export const nilList = new Nil('[]');
export const nilMap = new Nil('map[]');
/** Go's struct{}{}: `{}` both printed and as JSON. */
export class EmptyStruct {
  toJSON() {
    return {};
  }
}
export const emptyStruct = new EmptyStruct();

const goFormat = Symbol('goFormat');
/**
 * Marks an object as one of docker's Go structs: `{{.RootFS}}` prints `{layers [...]}`, its fields in
 * order without names, not `map[...]`. `print` gives that text; the object is otherwise unchanged.
 */
export function asStruct<T extends object>(obj: T, print: (o: T) => string): T {
  Object.defineProperty(obj, goFormat, { value: print, enumerable: false });
  return obj;
}

// ---- lexing and parsing -----------------------------------------------------------------------------

type Arg =
  | { k: 'field'; base: 'dot' | 'var'; name?: string; path: string[]; pos: number; text: string }
  | { k: 'str'; v: string }
  | { k: 'num'; v: number }
  | { k: 'bool'; v: boolean }
  | { k: 'nil' }
  | { k: 'ident'; name: string; pos: number }
  | { k: 'pipe'; pipe: Pipe; path: string[] };
interface Pipe {
  decl: string[];
  cmds: Arg[][];
  pos: number;
}
type Node =
  | { k: 'text'; v: string }
  | { k: 'action'; pipe: Pipe }
  | { k: 'if' | 'with'; pipe: Pipe; then: Node[]; else: Node[] }
  | { k: 'range'; pipe: Pipe; body: Node[]; else: Node[] };

export class TemplateError extends UsageError {}

function parseError(src: string, pos: number, msg: string): TemplateError {
  return new TemplateError(`template parsing error: template: :${lineOf(src, pos)}: ${msg}`);
}
function lineOf(src: string, pos: number): number {
  return src.slice(0, pos).split('\n').length;
}

interface Tok {
  t: 'field' | 'var' | 'str' | 'num' | 'ident' | 'pipe' | 'lp' | 'rp' | 'decl' | 'assign' | 'comma';
  v: string;
  pos: number;
}

/** Splits the inside of one action into tokens; `pos` is the offset in the whole template. */
function lexAction(src: string, start: number, end: number): Tok[] {
  const out: Tok[] = [];
  let i = start;
  while (i < end) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const rest = src.slice(i, end);
    let m: RegExpExecArray | null;
    if (c === '|') out.push({ t: 'pipe', v: c, pos: i++ });
    else if (c === '(') out.push({ t: 'lp', v: c, pos: i++ });
    else if (c === ')') out.push({ t: 'rp', v: c, pos: i++ });
    else if (c === ',') out.push({ t: 'comma', v: c, pos: i++ });
    else if (rest.startsWith(':=')) {
      out.push({ t: 'decl', v: ':=', pos: i });
      i += 2;
    } else if (c === '=') out.push({ t: 'assign', v: c, pos: i++ });
    else if (c === '"') {
      m = /^"(?:[^"\\\n]|\\.)*"/.exec(rest);
      if (!m) throw parseError(src, i, 'unterminated quoted string');
      out.push({ t: 'str', v: unquote(m[0], src, i), pos: i });
      i += m[0].length;
    } else if (c === '`') {
      const close = src.indexOf('`', i + 1);
      if (close < 0 || close >= end) throw parseError(src, i, 'unterminated raw quoted string');
      out.push({ t: 'str', v: src.slice(i + 1, close), pos: i });
      i = close + 1;
    } else if ((m = /^(?:\.[A-Za-z_][A-Za-z0-9_]*)+/.exec(rest))) {
      out.push({ t: 'field', v: m[0], pos: i });
      i += m[0].length;
    } else if (c === '.') out.push({ t: 'field', v: '.', pos: i++ });
    else if ((m = /^\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*/.exec(rest))) {
      out.push({ t: 'var', v: m[0], pos: i });
      i += m[0].length;
    } else if ((m = /^-?\d+(?:\.\d+)?/.exec(rest))) {
      out.push({ t: 'num', v: m[0], pos: i });
      i += m[0].length;
    } else if ((m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest))) {
      out.push({ t: 'ident', v: m[0], pos: i });
      i += m[0].length;
    } else throw parseError(src, i, `unexpected "${c}" in command`);
  }
  return out;
}

function unquote(q: string, src: string, pos: number): string {
  try {
    return JSON.parse(
      q.replace(/\\'/g, "'").replace(/\\([abfv])/g, (_, e: string) => `\\u000${'abfv'.indexOf(e) + 7}`),
    );
  } catch {
    throw parseError(src, pos, `invalid syntax in ${q}`);
  }
}

/** Parses one action's tokens into a pipeline (with `$x :=` or `$i, $v :=` declarations). */
function parsePipe(src: string, toks: Tok[], at: number): Pipe {
  let i = 0;
  const decl: string[] = [];
  const declEnd = toks.findIndex((t) => t.t === 'decl' || t.t === 'assign');
  if (declEnd > 0 && toks.slice(0, declEnd).every((t) => t.t === 'var' || t.t === 'comma')) {
    for (const t of toks.slice(0, declEnd)) if (t.t === 'var') decl.push(t.v);
    i = declEnd + 1;
  }
  const pipe: Pipe = { decl, cmds: [], pos: toks[i]?.pos ?? at };
  const parseCmd = (stop: (t: Tok) => boolean): Arg[] => {
    const cmd: Arg[] = [];
    while (i < toks.length && !stop(toks[i])) {
      const t = toks[i++];
      cmd.push(argOf(t));
    }
    return cmd;
  };
  const argOf = (t: Tok): Arg => {
    switch (t.t) {
      case 'field':
        return { k: 'field', base: 'dot', path: t.v === '.' ? [] : t.v.slice(1).split('.'), pos: t.pos, text: t.v };
      case 'var': {
        const [name, ...path] = t.v.split('.');
        return { k: 'field', base: 'var', name: name, path, pos: t.pos, text: t.v };
      }
      case 'str':
        return { k: 'str', v: t.v };
      case 'num':
        return { k: 'num', v: Number(t.v) };
      case 'ident':
        if (t.v === 'true' || t.v === 'false') return { k: 'bool', v: t.v === 'true' };
        if (t.v === 'nil') return { k: 'nil' };
        if (!(t.v in funcs)) throw parseError(src, t.pos, `function "${t.v}" not defined`);
        return { k: 'ident', name: t.v, pos: t.pos };
      case 'lp': {
        let depth = 1;
        const startI = i;
        while (i < toks.length && depth > 0) {
          if (toks[i].t === 'lp') depth++;
          if (toks[i].t === 'rp') depth--;
          i++;
        }
        if (depth > 0) throw parseError(src, t.pos, 'unclosed left paren');
        const inner = parsePipe(src, toks.slice(startI, i - 1), t.pos);
        // `(index .X 0).Field`: a field chain right after the parenthesis.
        const next = toks[i];
        if (next?.t === 'field' && next.pos === toks[i - 1].pos + 1 && next.v !== '.') {
          i++;
          return { k: 'pipe', pipe: inner, path: next.v.slice(1).split('.') };
        }
        return { k: 'pipe', pipe: inner, path: [] };
      }
      default:
        throw parseError(src, t.pos, `unexpected "${t.v}" in command`);
    }
  };
  while (i < toks.length) {
    const cmd = parseCmd((t) => t.t === 'pipe');
    if (cmd.length === 0) throw parseError(src, toks[i]?.pos ?? at, 'missing command');
    pipe.cmds.push(cmd);
    if (i < toks.length) i++; // the '|'
  }
  if (pipe.cmds.length === 0) throw parseError(src, at, 'missing value for command');
  return pipe;
}

export interface Template {
  source: string;
  nodes: Node[];
}

/** Parses a template; throws a TemplateError (a usage error: exit 2) worded as docker's. */
export function parseTemplate(src: string): Template {
  // Actions and the text between them, with {{- and -}} trimming applied to the text.
  const items: ({ k: 'text'; v: string } | { k: 'act'; start: number; end: number })[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      items.push({ k: 'text', v: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let start = open + 2;
    if (src.startsWith('- ', start) || src.startsWith('-\t', start) || src.startsWith('-\n', start)) {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    if (text) items.push({ k: 'text', v: text });
    let close: number;
    if (src.slice(start).trimStart().startsWith('/*')) {
      const endComment = src.indexOf('*/', start);
      if (endComment < 0) throw parseError(src, open, 'unclosed comment');
      close = src.indexOf('}}', endComment);
      if (close < 0) throw parseError(src, open, 'comment ends before closing delimiter');
      i = close + 2;
      if (src[close - 1] === ' ' && src[close - 2] === '-') i = skipSpace(src, i);
      continue;
    }
    close = findClose(src, start);
    if (close < 0) throw parseError(src, open, 'unclosed action');
    let end = close;
    i = close + 2;
    if (src[close - 1] === '-' && /\s/.test(src[close - 2] ?? '')) {
      end = close - 1;
      i = skipSpace(src, i);
    }
    items.push({ k: 'act', start, end });
  }

  let at = 0;
  const block = (stops: string[]): { nodes: Node[]; stop: string; stopToks: Tok[] } => {
    const nodes: Node[] = [];
    while (at < items.length) {
      const it = items[at++];
      if (it.k === 'text') {
        nodes.push({ k: 'text', v: it.v });
        continue;
      }
      const toks = lexAction(src, it.start, it.end);
      if (toks.length === 0) throw parseError(src, it.start, 'missing value for command');
      const head = toks[0];
      const kw = head.t === 'ident' ? head.v : '';
      if (kw === 'end' || kw === 'else') {
        if (!stops.includes(kw)) throw parseError(src, head.pos, `unexpected {{${kw}}}`);
        return { nodes, stop: kw, stopToks: toks.slice(1) };
      }
      if (kw === 'if' || kw === 'with' || kw === 'range') {
        nodes.push(control(kw, toks.slice(1), it.start));
        continue;
      }
      if (kw === 'define' || kw === 'template' || kw === 'block' || kw === 'break' || kw === 'continue')
        throw parseError(src, head.pos, `{{${kw}}} is not supported by tsbuild's --format`);
      nodes.push({ k: 'action', pipe: parsePipe(src, toks, it.start) });
    }
    if (stops.length) throw parseError(src, src.length, 'unexpected EOF');
    return { nodes, stop: '', stopToks: [] };
  };
  const control = (kw: 'if' | 'with' | 'range', toks: Tok[], pos: number): Node => {
    if (toks.length === 0) throw parseError(src, pos, `missing value for ${kw}`);
    const pipe = parsePipe(src, toks, pos);
    const body = block(['end', 'else']);
    let otherwise: Node[] = [];
    if (body.stop === 'else') {
      const t = body.stopToks;
      // `{{else if ...}}` / `{{else with ...}}`: a nested control ending at the same {{end}}.
      if (t.length && t[0].t === 'ident' && (t[0].v === 'if' || t[0].v === 'with') && kw !== 'range') {
        otherwise = [control(t[0].v, t.slice(1), t[0].pos)];
      } else {
        if (t.length) throw parseError(src, t[0].pos, 'unexpected tokens after else');
        const rest = block(['end']);
        otherwise = rest.nodes;
      }
    }
    if (kw === 'range') return { k: 'range', pipe, body: body.nodes, else: otherwise };
    return { k: kw, pipe, then: body.nodes, else: otherwise };
  };
  return { source: src, nodes: block([]).nodes };
}

/** The `}}` that closes an action starting at `start`, skipping quoted strings. */
function findClose(src: string, start: number): number {
  for (let i = start; i < src.length; i++) {
    const c = src[i];
    if (c === '"') {
      for (i++; i < src.length && src[i] !== '"' && src[i] !== '\n'; i++) if (src[i] === '\\') i++;
    } else if (c === '`') {
      const q = src.indexOf('`', i + 1);
      if (q < 0) return -1;
      i = q;
    } else if (c === '}' && src[i + 1] === '}') return i;
  }
  return -1;
}

function skipSpace(src: string, i: number): number {
  while (i < src.length && /\s/.test(src[i])) i++;
  return i;
}

// ---- evaluation --------------------------------------------------------------------------------------

type Value = unknown;

/** Go's %v of a value decoded from JSON (and the Nil/EmptyStruct markers). */
export function goString(v: Value): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (v instanceof Nil) return v.printed;
  if (v instanceof EmptyStruct) return '{}';
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (typeof v === 'object' && goFormat in v) return (v as { [goFormat]: (o: object) => string })[goFormat](v);
  if (typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return `map[${keys.map((k) => `${k}:${goString((v as Record<string, Value>)[k])}`).join(' ')}]`;
  }
  return String(v);
}

function truthy(v: Value): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (v instanceof Nil) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof EmptyStruct) return true;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

function json(v: Value): string {
  if (v instanceof Nil || v === undefined) return 'null';
  // Go's encoding/json escapes <, > and & (as docker's output shows: "\u003cmissing\u003e").
  return (JSON.stringify(v) ?? 'null').replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function sprintf(format: string, args: Value[]): string {
  let n = 0;
  return format.replace(/%([%sdvq])/g, (_, verb: string) => {
    if (verb === '%') return '%';
    const a = args[n++];
    if (verb === 'q') return JSON.stringify(String(a));
    return goString(a);
  });
}

type Fn = (args: Value[], ctx: { fail: (msg: string) => never }) => Value;
const cmp = (f: (a: number | string, b: number | string) => boolean): Fn => {
  return ([a, ...rest], ctx) => {
    if (rest.length === 0) ctx.fail('missing argument for comparison');
    return rest.some((b) => f(a as number, b as number));
  };
};
const funcs: Record<string, Fn> = {
  json: ([v]) => json(v),
  join: ([list, sep], ctx) => {
    if (list instanceof Nil || list === null) return '';
    if (!Array.isArray(list)) return ctx.fail(`join: ${goString(list)} is not a list`);
    return list.map(goString).join(String(sep));
  },
  split: ([s, sep]) => String(s).split(String(sep)),
  upper: ([s]) => String(s).toUpperCase(),
  lower: ([s]) => String(s).toLowerCase(),
  title: ([s]) => String(s).replace(/\b\w/g, (c) => c.toUpperCase()),
  len: ([v], ctx) => {
    if (v instanceof Nil) return 0;
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (v && typeof v === 'object') return Object.keys(v).length;
    return ctx.fail(`len of ${goString(v)}`);
  },
  index: ([v, ...keys], ctx) => {
    for (const k of keys) {
      // A nil map gives its zero value, as Go's index does (docker's maps hold strings); a nil slice has no items.
      if (v === nilMap) return '';
      if (v === nilList) return ctx.fail(`index out of range: ${String(k)}`);
      if (v instanceof Nil || v === null || v === undefined) return ctx.fail('index of untyped nil');
      if (Array.isArray(v)) {
        if (typeof k !== 'number' || k < 0 || k >= v.length) return ctx.fail(`index out of range: ${String(k)}`);
        v = v[k];
      } else if (typeof v === 'object') {
        // A key that is not there: the map's zero value, as Go's index gives (docker's maps hold strings).
        v = Object.hasOwn(v, String(k)) ? (v as Record<string, Value>)[String(k)] : '';
      } else return ctx.fail(`can't index item of type ${typeof v}`);
    }
    return v;
  },
  print: (args) => args.map(goString).join(''),
  println: (args) => args.map(goString).join(' ') + '\n',
  printf: ([f, ...args]) => sprintf(String(f), args),
  eq: cmp((a, b) => a === b),
  ne: ([a, b]) => a !== b,
  lt: cmp((a, b) => a < b),
  le: cmp((a, b) => a <= b),
  gt: cmp((a, b) => a > b),
  ge: cmp((a, b) => a >= b),
  and: (args) => args.find((a) => !truthy(a)) ?? args[args.length - 1],
  or: (args) => args.find((a) => truthy(a)) ?? args[args.length - 1],
  not: ([a]) => !truthy(a),
};

/** Renders a parsed template against data; throws a TemplateError worded as Go's execution errors. */
export function render(t: Template, data: Value): string {
  let out = '';
  const src = t.source;
  const fail = (pos: number, what: string, msg: string): never => {
    const lineStart = src.lastIndexOf('\n', pos - 1) + 1;
    throw new TemplateError(
      `template parsing error: template: :${lineOf(src, pos)}:${pos - lineStart}: executing "" at <${what}>: ${msg}`,
    );
  };
  const walk = (v: Value, path: string[], a: { pos: number; text: string }): Value => {
    let offset = a.text.startsWith('$') ? a.text.indexOf('.') : 0;
    for (const name of path) {
      const segPos = a.pos + offset;
      offset += name.length + 1;
      if (v === null || v === undefined || v instanceof Nil)
        return fail(segPos, a.text, `nil pointer evaluating .${name}`);
      if (typeof v !== 'object' || Array.isArray(v) || v instanceof EmptyStruct)
        return fail(segPos, a.text, `can't evaluate field ${name} in type ${Array.isArray(v) ? 'slice' : typeof v}`);
      if (!Object.hasOwn(v, name)) return fail(segPos, a.text, `map has no entry for key "${name}"`);
      v = (v as Record<string, Value>)[name];
    }
    return v;
  };
  const exec = (nodes: Node[], dot: Value, vars: Map<string, Value>) => {
    for (const n of nodes) {
      if (n.k === 'text') out += n.v;
      else if (n.k === 'action') {
        const v = pipe(n.pipe, dot, vars);
        if (n.pipe.decl.length === 0) out += goString(v);
      } else if (n.k === 'if' || n.k === 'with') {
        const scope = new Map(vars);
        const v = pipe(n.pipe, dot, scope);
        if (truthy(v)) exec(n.then, n.k === 'with' ? v : dot, scope);
        else exec(n.else, dot, scope);
      } else if (n.k === 'range') {
        const scope = new Map(vars);
        const v = pipe({ ...n.pipe, decl: [] }, dot, scope);
        const entries: [Value, Value][] =
          v instanceof Nil || v === null || v === undefined
            ? []
            : Array.isArray(v)
              ? v.map((x, i) => [i, x])
              : typeof v === 'object' && !(v instanceof EmptyStruct)
                ? Object.keys(v)
                    .sort()
                    .map((k) => [k, (v as Record<string, Value>)[k]])
                : fail(n.pipe.pos, 'range', `range can't iterate over ${goString(v)}`);
        if (entries.length === 0) exec(n.else, dot, scope);
        for (const [k, x] of entries) {
          const d = n.pipe.decl;
          if (d.length === 1) scope.set(d[0], x);
          if (d.length === 2) {
            scope.set(d[0], k);
            scope.set(d[1], x);
          }
          exec(n.body, x, scope);
        }
      }
    }
  };
  const pipe = (p: Pipe, dot: Value, vars: Map<string, Value>): Value => {
    let prev: Value[] = [];
    let v: Value;
    for (const cmd of p.cmds) {
      v = command(cmd, dot, vars, prev);
      prev = [v];
    }
    if (p.decl.length) vars.set(p.decl[p.decl.length - 1], v);
    return v;
  };
  const arg = (a: Arg, dot: Value, vars: Map<string, Value>): Value => {
    switch (a.k) {
      case 'field': {
        if (a.base === 'dot') return walk(dot, a.path, a);
        const name = a.name!;
        if (name === '$') return walk(data, a.path, a);
        if (!vars.has(name)) return fail(a.pos, a.text, `undefined variable: ${name}`);
        return walk(vars.get(name), a.path, a);
      }
      case 'str':
      case 'num':
      case 'bool':
        return a.v;
      case 'nil':
        return null;
      case 'pipe':
        return walk(pipe(a.pipe, dot, new Map(vars)), a.path, { pos: a.pipe.pos, text: '(...)' });
      case 'ident':
        return funcs[a.name]([], { fail: (m) => fail(a.pos, a.name, m) });
    }
  };
  const command = (cmd: Arg[], dot: Value, vars: Map<string, Value>, piped: Value[]): Value => {
    const head = cmd[0];
    if (head.k === 'ident') {
      const args = [...cmd.slice(1).map((a) => arg(a, dot, vars)), ...piped];
      return funcs[head.name](args, { fail: (m) => fail(head.pos, head.name, `error calling ${head.name}: ${m}`) });
    }
    if (cmd.length > 1 || piped.length) return fail(0, 'command', `can't give argument to non-function`);
    return arg(head, dot, vars);
  };
  exec(t.nodes, data, new Map([['$', data]]));
  return out;
}

/** docker's `--format`: `json` is one JSON object per line; `table ...` adds a header (see table.ts). */
export function formatEach(format: string, rows: Value[]): string {
  const t = parseTemplate(format);
  return rows.map((r) => render(t, r) + '\n').join('');
}
