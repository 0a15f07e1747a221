import { ExpansionError } from '../errors.js';
import { isDigit, isLetter } from './chars.js';
import { Fields } from './fields.js';
import { replace, trimPrefix, trimSuffix } from './pattern.js';

/** Where variables come from. `undefined` means unset; '' is set but empty. */
export type Env = ReadonlyMap<string, string> | ((name: string) => string | undefined);

export interface LexOptions {
  /** The file's escape character: `\` or `` ` ``. */
  escape?: string;
  /** Keep quote characters in the output (BuildKit's RawQuotes). */
  rawQuotes?: boolean;
  /** Keep escape characters in the output (BuildKit's RawEscapes). */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters (BuildKit's SkipProcessQuotes). */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written (BuildKit's SkipUnsetEnv). */
  skipUnsetEnv?: boolean;
}

export interface LexResult {
  /** The word with expansion and quote removal, no field splitting. */
  word: string;
  /** The same input split into fields the way BuildKit splits. */
  words: string[];
  /** Variable names that were looked up and found / not found. */
  matched: Set<string>;
  unmatched: Set<string>;
}

const EOF = '';

/**
 * BuildKit's Dockerfile word lexer (frontend/dockerfile/shell), re-written:
 * `$V ${V} ${V:-w} ${V-w} ${V:+w} ${V+w} ${V:?m} ${V?m} ${V#p} ${V##p} ${V%p}
 * ${V%%p} ${V/p/r} ${V//p/r}`, single and double quotes, the escape character.
 */
class Lexer {
  private chars: string[];
  private pos = 0;
  private readonly escape: string;
  private rawEscapes: boolean;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  constructor(
    input: string,
    private readonly env: Env,
    private readonly opts: LexOptions,
  ) {
    this.chars = Array.from(input);
    this.escape = opts.escape ?? '\\';
    this.rawEscapes = opts.rawEscapes ?? false;
  }

  private peek(): string {
    return this.chars[this.pos] ?? EOF;
  }
  private next(): string {
    return this.chars[this.pos++] ?? EOF;
  }

  private lookup(name: string): string | undefined {
    const v = typeof this.env === 'function' ? this.env(name) : this.env.get(name);
    (v === undefined ? this.unmatched : this.matched).add(name);
    return v;
  }

  run(): { word: string; words: string[] } {
    return this.processStopOn(EOF, this.rawEscapes);
  }

  private processStopOn(stop: string, rawEscapes: boolean): { word: string; words: string[] } {
    let result = '';
    const fields = new Fields();
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      while (this.peek() !== EOF) {
        const ch = this.peek();
        if (stop !== EOF && ch === stop) {
          this.next();
          return { word: result, words: fields.done() };
        }
        if (ch === '$') {
          const tmp = this.processDollar();
          result += tmp;
          fields.addString(tmp);
        } else if (!this.opts.skipProcessQuotes && (ch === "'" || ch === '"')) {
          const tmp = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
          result += tmp;
          fields.addRaw(tmp);
        } else {
          let c = this.next();
          if (c === this.escape) {
            if (this.rawEscapes) {
              fields.addRaw(c);
              result += c;
            }
            c = this.next();
            if (c === EOF) break; // an escape at the very end is dropped
            fields.addRaw(c);
          } else {
            fields.addChar(c);
          }
          result += c;
        }
      }
      if (stop !== EOF) throw new ExpansionError(`unexpected end of statement while looking for matching ${stop}`);
      return { word: result, words: fields.done() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    let result = '';
    const open = this.next();
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const ch = this.next();
      if (ch === EOF) throw new ExpansionError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") {
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    const open = this.next();
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const p = this.peek();
      if (p === EOF) throw new ExpansionError('unexpected end of statement while looking for matching double-quote');
      if (p === '"') {
        const ch = this.next();
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      if (p === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next();
      if (ch === this.escape) {
        if (this.rawEscapes) result += ch;
        const q = this.peek();
        if (q === EOF) continue; // an escape right before the end is ignored
        // Inside double quotes only ", $ and the escape itself can be escaped.
        if (q === '"' || q === '$' || q === this.escape) ch = this.next();
      }
      result += ch;
    }
  }

  private processDollar(): string {
    this.next(); // the '$'
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.lookup(name);
      if (value === undefined && this.opts.skipUnsetEnv) return '$' + name;
      return value ?? '';
    }
    this.next(); // the '{'
    const first = this.peek();
    if (first === EOF) throw new ExpansionError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new ExpansionError('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    let chs = ch;
    switch (ch) {
      case '}': {
        const value = this.lookup(name);
        if (value === undefined && this.opts.skipUnsetEnv) return '${' + name + '}';
        return value ?? '';
      }
      case ':':
      case '+':
      case '-':
      case '?':
      case '#':
      case '%': {
        let nullIsUnset = false;
        if (ch === ':') {
          nullIsUnset = true;
          ch = this.next();
          chs += ch;
        }
        const patternOp = ch === '#' || ch === '%';
        if (nullIsUnset && patternOp) throw new ExpansionError(`unsupported modifier (${chs}) in substitution`);
        let word: string;
        try {
          word = this.processStopOn('}', patternOp).word;
        } catch (e) {
          if (this.peek() === EOF) throw new ExpansionError("syntax error: missing '}'");
          throw e;
        }
        const value = this.lookup(name);
        if (this.opts.skipUnsetEnv && value === undefined) return '${' + name + chs + word + '}';
        const empty = value === undefined || (nullIsUnset && value === '');
        switch (ch) {
          case '-':
            return empty ? word : value;
          case '+':
            return empty ? '' : word;
          case '?':
            if (value === undefined) throw new ExpansionError(`${name}: ${word || 'is not allowed to be unset'}`);
            if (nullIsUnset && value === '')
              throw new ExpansionError(`${name}: ${word || 'is not allowed to be empty'}`);
            return value;
          case '#':
          case '%': {
            let greedy = false;
            if (word.startsWith(ch)) {
              greedy = true;
              word = word.slice(1);
            }
            const v = value ?? '';
            return ch === '%' ? trimSuffix(word, v, greedy) : trimPrefix(word, v, greedy);
          }
          default:
            throw new ExpansionError(`unsupported modifier (${chs}) in substitution`);
        }
      }
      case '/': {
        const all = this.peek() === '/';
        if (all) this.next();
        let pattern: string;
        try {
          pattern = this.processStopOn('/', true).word;
        } catch (e) {
          if (this.peek() === EOF) throw new ExpansionError("syntax error: missing '/' in ${}");
          throw e;
        }
        let repl: string;
        try {
          repl = this.processStopOn('}', true).word;
        } catch (e) {
          if (this.peek() === EOF) throw new ExpansionError("syntax error: missing '}'");
          throw e;
        }
        const value = this.lookup(name);
        if (this.opts.skipUnsetEnv && value === undefined) return '${' + name + '/' + pattern + '/' + repl + '}';
        return replace(pattern, repl, value ?? '', all);
      }
      default:
        throw new ExpansionError(`unsupported modifier (${chs}) in substitution`);
    }
  }

  // A name is letters, digits and '_'; positional ($1, $23) and special
  // parameters ($@ $* $# $? $- $$ $! $0) are names too, always unset.
  private processName(): string {
    let name = '';
    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (name === '' && isDigit(ch)) {
        while (this.peek() !== EOF && isDigit(this.peek())) name += this.next();
        return name;
      }
      if (name === '' && '@*#?-$!0'.includes(ch)) return this.next();
      if (!isLetter(ch) && !isDigit(ch) && ch !== '_') break;
      name += this.next();
    }
    return name;
  }
}

/** Expansion and quote removal of one word, no field splitting (ENV, LABEL, COPY...). */
export function expandWord(word: string, env: Env, opts: LexOptions = {}): string {
  return new Lexer(word, env, opts).run().word;
}

/** Expansion with field splitting (EXPOSE, heredoc detection...). */
export function expandWords(word: string, env: Env, opts: LexOptions = {}): string[] {
  return new Lexer(word, env, opts).run().words;
}

/** Both results plus which variables were looked up, for unused-build-arg bookkeeping. */
export function lex(word: string, env: Env, opts: LexOptions = {}): LexResult {
  const l = new Lexer(word, env, opts);
  const r = l.run();
  return { word: r.word, words: r.words, matched: l.matched, unmatched: l.unmatched };
}
