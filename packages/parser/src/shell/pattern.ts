import { ExpansionError } from '../errors.js';

// Shell glob patterns of ${V#p}, ${V%p}, ${V/p/r} turned into regular
// expressions, as BuildKit does: `*` is lazy unless the greedy form (##, %%) or a
// replacement is asked for, `?` is one character, `\` may only escape * ? \.
export function patternToRegex(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? '^' : '';
  const star = greedy ? '.*' : '.*?';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === '*') {
      out += star;
      continue;
    }
    if (ch === '?') {
      out += '.';
      continue;
    }
    if (ch === '\\') {
      // `\}` inside ${} only protects the brace; it is not part of the pattern.
      if (chars[i + 1] === '}') continue;
      const next = chars[++i];
      if (next !== '*' && next !== '?' && next !== '\\') {
        throw new ExpansionError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${next ?? ''}'`);
      }
      out += '\\' + next;
      continue;
    }
    if ('[]{}.+()|^$/'.includes(ch)) out += '\\' + ch;
    else out += ch;
  }
  return new RegExp(out, 'u');
}

export function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = patternToRegex(pattern, greedy, true).exec(value);
  return m ? value.slice(m[0].length) : value;
}

// Regular expressions cannot find the shortest *rightmost* match, so the value
// and the pattern are reversed (keeping `\x` escapes in order) and trimmed from the left.
function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const out: string[] = new Array(chars.length);
  const last = chars.length - 1;
  for (let i = 0; i <= last;) {
    const o = last - i;
    if (chars[i] === '\\' && i !== last) {
      out[o - 1] = '\\';
      out[o] = chars[i + 1]!;
      i += 2;
    } else {
      out[o] = chars[i]!;
      i++;
    }
  }
  return out.join('');
}

const reverse = (s: string) => Array.from(s).reverse().join('');

export function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverse(trimPrefix(reversePattern(pattern), reverse(value), greedy));
}

export function replace(pattern: string, replacement: string, value: string, all: boolean): string {
  const re = patternToRegex(pattern, true, false);
  if (all) {
    // Go's ReplaceAll skips an empty match that abuts the previous match; JS does not.
    const g = new RegExp(re.source, 'gu');
    let out = '',
      copied = 0,
      lastEnd = -1,
      pos = 0;
    while (pos <= value.length) {
      g.lastIndex = pos;
      const m = g.exec(value);
      if (!m) break;
      const end = m.index + m[0].length;
      if (m[0] === '' && m.index === lastEnd) {
        pos = m.index + (value.codePointAt(m.index)! > 0xffff ? 2 : 1);
        continue;
      }
      out += value.slice(copied, m.index) + replacement;
      copied = end;
      lastEnd = end;
      pos = m[0] === '' ? end + (end < value.length && value.codePointAt(end)! > 0xffff ? 2 : 1) : end;
      if (m[0] === '' && end < value.length) {
        // the skipped character is copied on the next slice
      }
    }
    return out + value.slice(copied);
  }
  const m = re.exec(value);
  if (!m) return value;
  return value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length);
}
