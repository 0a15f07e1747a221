import type { Heredoc } from './ast.js';
import { expandWords } from './shell/lexer.js';

const reHeredoc = /^(\d*)<<(-?)([^<]*)$/;
const noEnv = () => undefined;

type Header = Omit<Heredoc, 'content'>;

/**
 * Recognises one word as a heredoc opener: `<<EOF`, `<<-EOF`, `3<<EOF`,
 * `<<"EOF"`. Any quote anywhere in the delimiter turns expansion off, which we
 * detect as BuildKit does: lex with and without raw quotes and compare.
 */
export function parseHeredoc(word: string): Header | undefined {
  const m = reHeredoc.exec(word);
  if (!m) return undefined;
  const rest = m[3];
  if (rest === '') return undefined;
  let words: string[], raw: string[];
  try {
    words = expandWords(rest, noEnv, { skipUnsetEnv: true });
    if (words.length !== 1) return undefined;
    raw = expandWords(rest, noEnv, { skipUnsetEnv: true, rawQuotes: true });
  } catch {
    return undefined;
  }
  if (raw.length !== 1) return undefined;
  const quotes = (s: string) => (s.match(/['"]/g) ?? []).length;
  return {
    name: words[0],
    expand: quotes(words[0]) === quotes(raw[0]),
    chomp: m[2] === '-',
    fd: m[1] ? Number.parseInt(m[1], 10) : 0,
  };
}

/** Every heredoc opener on a logical line, in order. */
export function heredocsFromLine(line: string): Header[] {
  let words: string[];
  try {
    words = expandWords(line, noEnv, { rawQuotes: true, rawEscapes: true });
  } catch {
    return []; // an unbalanced quote: BuildKit sees no heredocs either
  }
  const out: Header[] = [];
  for (const w of words) {
    const h = parseHeredoc(w);
    if (h) out.push(h);
  }
  return out;
}

/** `<<-`: strip leading tabs from every line of the body. */
export function chompHeredoc(content: string): string {
  return content.replace(/^\t+/gm, '');
}
