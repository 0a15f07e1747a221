import { DockerfileError, loc } from './errors.js';
import type { Directives } from './ast.js';

// `# name=value` at the very top of the file. Any line that is not a known
// directive ends the block, so a directive after a comment is a comment.
const reDirective = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
const known = new Set(['syntax', 'escape', 'check']);

export class DirectiveParser {
  readonly directives: Directives = { escape: '\\' };
  private done = false;
  private seen = new Set<string>();

  constructor(private readonly file: string) {}

  /** Feeds one physical line (newline and leading whitespace removed). */
  line(text: string, lineNo: number): void {
    if (this.done) return;
    const m = reDirective.exec(text);
    const name = m?.[1]?.toLowerCase();
    if (!m || !name || !known.has(name)) {
      this.done = true;
      return;
    }
    // Errors point at the directive's name (duplicate) or value (invalid), as spans.
    const column = text.indexOf(m[1]) + 1;
    const value = m[2];
    const valueColumn = text.lastIndexOf(value) + 1;
    if (this.seen.has(name)) {
      throw new DockerfileError('duplicate-directive', `only one ${name} parser directive can be used`, {
        ...loc(this.file, lineNo, column),
        endColumn: column + m[1].length,
      });
    }
    this.seen.add(name);
    if (name === 'escape') {
      if (value !== '`' && value !== '\\') {
        throw new DockerfileError('invalid-directive', `invalid escape token '${value}' does not match \` or \\`, {
          ...loc(this.file, lineNo, valueColumn),
          endColumn: valueColumn + value.length,
        });
      }
      this.directives.escape = value;
    } else if (name === 'syntax') {
      this.directives.syntax = value;
    } else {
      this.directives.check = value;
      this.directives.checkLine = lineNo;
    }
  }
}
