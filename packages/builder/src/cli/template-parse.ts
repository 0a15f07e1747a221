// Lexer and parser for the --format template engine (template.ts): turns a Go text/template source into
// nodes, with parse errors worded as docker's. Split out so that the evaluator reads on its own.
import { UsageError } from '../errors.js';
import { funcs } from './template-funcs.js';

export type Arg =
  | { k: 'field'; base: 'dot' | 'var'; name?: string; path: string[]; pos: number; text: string }
  | { k: 'str'; v: string }
  | { k: 'num'; v: number }
  | { k: 'bool'; v: boolean }
  | { k: 'nil' }
  | { k: 'ident'; name: string; pos: number }
  | { k: 'pipe'; pipe: Pipe; path: string[] };
export interface Pipe {
  decl: string[];
  cmds: Arg[][];
  pos: number;
}
export type Node =
  | { k: 'text'; v: string }
  | { k: 'action'; pipe: Pipe }
  | { k: 'if' | 'with'; pipe: Pipe; then: Node[]; else: Node[] }
  | { k: 'range'; pipe: Pipe; body: Node[]; else: Node[] };

export class TemplateError extends UsageError {}

function parseError(src: string, pos: number, msg: string): TemplateError {
  return new TemplateError(`template parsing error: template: :${lineOf(src, pos)}: ${msg}`);
}
export function lineOf(src: string, pos: number): number {
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
