import type { Dockerfile, Instruction } from './ast.js';

/**
 * Go's strconv.Quote: `\"` and `\\`, the short escapes, `\x` / `\u` / `\U` for
 * other non-printable characters, printable Unicode kept as is.
 */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    switch (ch) {
      case '"':
        out += '\\"';
        continue;
      case '\\':
        out += '\\\\';
        continue;
      case '\x07':
        out += '\\a';
        continue;
      case '\b':
        out += '\\b';
        continue;
      case '\f':
        out += '\\f';
        continue;
      case '\n':
        out += '\\n';
        continue;
      case '\r':
        out += '\\r';
        continue;
      case '\t':
        out += '\\t';
        continue;
      case '\v':
        out += '\\v';
        continue;
    }
    if (c === 0xfffd && ch !== '\ufffd') {
      out += '\\ufffd';
      continue;
    }
    if (isPrintable(ch)) {
      out += ch;
      continue;
    }
    if (c < 0x80) out += '\\x' + c.toString(16).padStart(2, '0');
    else if (c < 0x10000) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += '\\U' + c.toString(16).padStart(8, '0');
  }
  return out + '"';
}

// Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the
// ASCII space. Lone surrogates cannot be printed.
function isPrintable(ch: string): boolean {
  if (ch === ' ') return true;
  return /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(ch);
}

function dumpNode(n: Instruction): string {
  let s = n.cmd.toLowerCase();
  if (n.flags.length > 0) s += ` [${n.flags.map(goQuote).join(' ')}]`;
  if (n.sub) s += ' (' + dumpNode(n.sub) + ')';
  for (const a of n.args) s += ' ' + goQuote(a);
  return s.trim();
}

/** BuildKit's `Node.Dump()` of the whole file: one `(keyword ...)` line per instruction. */
export function dumpBuildkit(df: Dockerfile): string {
  return df.instructions.map((n) => '(' + dumpNode(n) + ')').join('\n');
}
