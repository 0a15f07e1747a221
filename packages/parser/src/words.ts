import { isSpace } from './shell/chars.js';

// The splitters of BuildKit's line parser (parser/line_parsers.go). They work on
// the raw text: nothing here expands variables or removes quotes, except flags.

/** Go's regexp `[\t\v\f\r ]+` splitting (no newline, no Unicode spaces). */
export const reWhitespace = /[\t\v\f\r ]+/;

export function splitWhitespace(rest: string): string[] {
  return rest.split(reWhitespace);
}

/** Like strings.TrimSpace with unicode.IsSpace. */
export function trimSpace(s: string): string {
  let a = 0,
    b = s.length;
  while (a < b && isSpace(s[a])) a++;
  while (b > a && isSpace(s[b - 1])) b--;
  return s.slice(a, b);
}

export function trimLeftSpace(s: string): string {
  let a = 0;
  while (a < s.length && isSpace(s[a])) a++;
  return s.slice(a);
}

/**
 * Quote-aware word split used for ARG, ENV and LABEL: whitespace outside quotes
 * separates words, but quotes and escapes stay in the words.
 */
export function parseWords(rest: string, escape: string): string[] {
  const chars = Array.from(rest);
  const words: string[] = [];
  let inWord = false,
    inQuote = false,
    quote = '',
    word = '',
    blankOK = false;
  for (let i = 0; i <= chars.length; i++) {
    const end = i === chars.length;
    let ch = end ? '' : chars[i];
    if (!inWord && !inQuote) {
      if (end) break;
      if (isSpace(ch)) continue;
      inWord = true;
    }
    if (end) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (inWord) {
      if (isSpace(ch)) {
        inWord = false;
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        inWord = false;
        inQuote = true;
      }
      if (ch === escape) {
        if (i + 1 === chars.length) continue; // an escape at the end is dropped
        word += ch;
        ch = chars[++i]!;
      }
      word += ch;
      continue;
    }
    // in a quote
    if (ch === quote) {
      inQuote = false;
      inWord = true;
    }
    if (ch === escape && quote !== "'") {
      if (i + 1 === chars.length) {
        inQuote = false;
        inWord = true;
        continue;
      }
      word += ch;
      ch = chars[++i]!;
    }
    word += ch;
  }
  return words;
}

/**
 * Pulls leading `--flag[=value]` words off an instruction's arguments. Flag words
 * lose their quotes and `\` escapes; a bare `--` ends the flags and is dropped.
 */
export function extractFlags(line: string): { rest: string; flags: string[] } {
  const flags: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '',
    quote = '',
    blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    const end = pos === line.length;
    let ch = end ? '' : line[pos];
    if (phase === 'spaces') {
      if (end) break;
      if (isSpace(ch)) continue;
      if (ch !== '-' || line[pos + 1] !== '-') return { rest: line.slice(pos), flags };
      phase = 'word';
    }
    if (end) {
      if (word !== '--' && (blankOK || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (word === '--') return { rest: line.slice(pos), flags };
        if (blankOK || word.length > 0) flags.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        ch = line[++pos]!;
      }
      word += ch;
      continue;
    }
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      ch = line[++pos]!;
    }
    word += ch;
  }
  return { rest: '', flags };
}

export class NotStringArray extends Error {}

/**
 * Decodes a JSON array of strings. Returns undefined when the text is not a JSON
 * array at all (then it is shell form); throws NotStringArray when it is an
 * array holding something other than strings (BuildKit rejects that).
 */
export function parseJSONArray(rest: string): string[] | undefined {
  const text = trimLeftSpace(rest);
  if (!text.startsWith('[')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null) return [];
  if (!Array.isArray(value)) return undefined;
  for (const v of value) if (typeof v !== 'string') throw new NotStringArray('JSON array must contain only strings');
  return value as string[];
}
