// Field splitting is the one place the lexer's two results differ (expandWords vs expandWord):
// kept apart so the rule for what ends a field is read on its own.
import { isSpace } from './chars.js';

/**
 * Collects fields: unquoted whitespace (also from unquoted expansions) ends a field; quoted text and
 * escaped characters never do.
 */
export class Fields {
  word = '';
  words: string[] = [];
  inWord = false;
  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else {
      this.addRaw(ch);
    }
  }
  addRaw(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  done(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}
