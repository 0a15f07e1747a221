// Go's unicode.IsSpace, which BuildKit uses everywhere it says "whitespace".
// JavaScript's \s differs (it includes U+FEFF, excludes U+0085), so we spell it out.
export function isSpace(ch: string): boolean {
  switch (ch) {
    case ' ': case '\t': case '\n': case '\v': case '\f': case '\r':
    case '\u0085': case '\u00a0': case '\u1680': case '\u2028': case '\u2029':
    case '\u202f': case '\u205f': case '\u3000':
      return true;
  }
  return ch >= '\u2000' && ch <= '\u200a';
}

export function isDigit(ch: string): boolean {
  return /^\p{Nd}$/u.test(ch);
}

export function isLetter(ch: string): boolean {
  return /^\p{L}$/u.test(ch);
}
