// Go's %v printing and truthiness for the --format template engine (template.ts), split out because
// docker's output is Go's and the rules for it are their own job: slices `[a b]`, maps `map[k:v]` with
// sorted keys, nil `<nil>`, and the markers below for Go's typed zero values.
//
// Go's typed structs print nil slices as `[]` and nil maps as `map[]`, while their JSON omits them or
// says null: `nilList`/`nilMap` stand for such fields (see inspect's data), `emptyStruct` for `{}`.
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

export type Value = unknown;

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

export function truthy(v: Value): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (v instanceof Nil) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof EmptyStruct) return true;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

export function json(v: Value): string {
  if (v instanceof Nil || v === undefined) return 'null';
  // Go's encoding/json escapes <, > and & (as docker's output shows: "\u003cmissing\u003e").
  return (JSON.stringify(v) ?? 'null').replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
