// Go's unicode.IsSpace, which BuildKit uses everywhere it says "whitespace".
// JavaScript's \s differs (it includes U+FEFF, excludes U+0085), so we spell it out.
export function isSpace(ch: string): boolean {
  switch (ch) {
    case ' ':
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case '\u0085':
    case '\u00a0':
    case '\u1680':
    case '\u2028':
    case '\u2029':
    case '\u202f':
    case '\u205f':
    case '\u3000':
      return true;
  }
  return ch >= '\u2000' && ch <= '\u200a';
}

// Go's unicode.IsDigit and IsLetter. ASCII is answered without the Unicode property classes:
// compiling one costs milliseconds, which every build paid the first time a variable was expanded.
const unicodeDigit = /^\p{Nd}$/u;
const unicodeLetter = /^\p{L}$/u;

export function isDigit(ch: string): boolean {
  if (ch < '\x80') return ch >= '0' && ch <= '9' && ch.length === 1;
  return unicodeDigit.test(ch);
}

export function isLetter(ch: string): boolean {
  if (ch < '\x80') return ch.length === 1 && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'));
  return unicodeLetter.test(ch);
}
