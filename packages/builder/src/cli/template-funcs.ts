// The functions a --format template may call (docker's json, join, split, upper, lower, title and Go's
// builtins), split out of template.ts as a table of their own: the parser checks names against it and
// the evaluator calls into it.
import { goString, json, Nil, nilList, nilMap, truthy, type Value } from './template-values.js';

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
export const funcs: Record<string, Fn> = {
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
