// What the build checks know about names and words: the predefined platform args, what looks like a
// secret, the image reference grammar, "did you mean" suggestions, and which variable references carry a
// default. Split out of lint.ts, which walks the Dockerfile and asks these questions.

// Build args every FROM may use without declaring them (BuildKit's predefined platform args).
export const PLATFORM_ARGS = ['BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT'].flatMap((n) => [
  n,
  n.replace('BUILD', 'TARGET'),
]);

// BuildKit's: a name whose first or last `_` word is one of these (case-insensitive), unless it says public.
export const secretName =
  /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
export const publicName = /public/i;

// A docker image reference (distribution's grammar), to tell whether a FROM's default expands to one.
const component = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const domain = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*';
export const reference = new RegExp(
  `^(?:${domain}(?::[0-9]+)?/)?${component}(?:/${component})*(?::[\\w][\\w.-]{0,127})?` +
    '(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$',
);

/** Levenshtein distance, for BuildKit's "did you mean" (a suggestion is closer than 3 edits). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
export function suggest(name: string, options: Iterable<string>): string | undefined {
  let best: string | undefined;
  let min = 3;
  for (const o of options) {
    if (o === name) return undefined;
    const d = distance(name, o);
    if (d < min) {
      min = d;
      best = o;
    }
  }
  return best;
}

/** Variables a word reads with a default or alternative (`${X:-d}`, `${X-d}`, `${X:+a}`, ...): not undefined. */
export function defaultedRefs(word: string): Set<string> {
  const withDefault = new Set<string>();
  for (const m of word.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-+?=])/g)) withDefault.add(m[1]);
  return withDefault;
}
