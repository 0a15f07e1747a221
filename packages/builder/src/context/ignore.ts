// .dockerignore rules as Docker applies them (moby/patternmatcher): patterns are cleaned
// paths relative to the context root, `!` re-includes, the last matching pattern wins, and a
// pattern also matches everything below a directory it matches.

interface Pattern {
  source: string;
  exclusion: boolean;
  regex: RegExp;
  /** Number of path components, for matching against a parent of the path. */
  depth: number;
}

export class IgnoreMatcher {
  readonly patterns: Pattern[];
  readonly hasExclusions: boolean;

  constructor(lines: string[]) {
    this.patterns = [];
    for (let raw of lines) {
      raw = raw.trim();
      if (raw === '' || raw.startsWith('#')) continue;
      let exclusion = false;
      if (raw.startsWith('!')) {
        exclusion = true;
        raw = raw.slice(1).trim();
      }
      const cleaned = cleanPath(raw);
      if (cleaned === '' || cleaned === '.') continue;
      this.patterns.push({ source: cleaned, exclusion, regex: compile(cleaned), depth: cleaned.split('/').length });
    }
    this.hasExclusions = this.patterns.some((p) => p.exclusion);
  }

  static parse(text: string): IgnoreMatcher {
    return new IgnoreMatcher(text.replace(/^\uFEFF/, '').split(/\r?\n/));
  }

  /** Whether a context-relative path ('a/b/c', no leading slash) is excluded. */
  ignores(path: string): boolean {
    if (this.patterns.length === 0) return false;
    let matched = false;
    const parents = path.split('/').slice(0, -1);
    for (const p of this.patterns) {
      if (p.exclusion !== matched) continue; // cannot change the outcome
      let m = p.regex.test(path);
      if (!m && parents.length > 0 && p.depth <= parents.length) m = p.regex.test(parents.slice(0, p.depth).join('/'));
      if (m) matched = !p.exclusion;
    }
    return matched;
  }

  /**
   * Whether a directory can be skipped whole: it is excluded and no `!` pattern could
   * re-include something below it.
   */
  skipsDir(path: string): boolean {
    if (!this.ignores(path)) return false;
    if (!this.hasExclusions) return true;
    return !this.patterns.some((p) => p.exclusion && (p.source.startsWith(path + '/') || /[*?[\\]/.test(p.source)));
  }
}

/** filepath.Clean for '/'-separated relative paths; a leading '/' is dropped as Docker does. */
export function cleanPath(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/') || '.';
}

function compile(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++;
        re += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\' && i + 1 < pattern.length) {
      re += escapeRe(pattern[++i]);
    } else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else {
      re += escapeRe(ch);
    }
  }
  return new RegExp(re + '$', 's');
}

function escapeRe(ch: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(ch) ? `\\${ch}` : ch;
}

/** filepath.Match for one path component set, used for COPY source wildcards. */
export function globToRegExp(pattern: string): RegExp {
  return compile(pattern);
}

export function hasGlob(p: string): boolean {
  return /[*?[]/.test(p);
}
