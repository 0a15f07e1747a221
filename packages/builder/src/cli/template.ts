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
// This file is the evaluator and the module's public face; template-parse.ts lexes and parses,
// template-funcs.ts holds the callable functions, template-values.ts prints values as Go does.
import { Nil, EmptyStruct, goString, truthy, type Value } from './template-values.js';
import { funcs } from './template-funcs.js';
import {
  lineOf,
  parseTemplate,
  TemplateError,
  type Arg,
  type Node,
  type Pipe,
  type Template,
} from './template-parse.js';

export { asStruct, EmptyStruct, emptyStruct, goString, Nil, nilList, nilMap } from './template-values.js';
export { parseTemplate, TemplateError, type Template } from './template-parse.js';

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
