import type { Dockerfile, Instruction } from './ast.js';
import { DirectiveParser } from './directives.js';
import { DockerfileError, loc } from './errors.js';
import { heredocsFromLine } from './heredoc.js';
import { located, rememberSource } from './locate.js';
import type { Source } from './locate.js';
import { LineError, canContainHeredoc, nodeFromLine } from './node.js';
import { isSpace } from './shell/chars.js';
import type { Warning } from './types.js';

// The logical-line reader follows BuildKit's parser.Parse step by step, because
// its quirks are the format: comments and blank lines inside a continuation are
// skipped, the continuation token must not itself be escaped, the leading
// whitespace of continuation lines is kept, heredoc bodies follow the line.

const trimNewline = (s: string) => s.replace(/[\r\n]+$/, '');
function trimLeadingWhitespace(s: string): string {
  let i = 0;
  while (i < s.length && isSpace(s[i])) i++;
  return s.slice(i);
}
const isComment = (s: string) => trimLeadingWhitespace(trimNewline(s)).startsWith('#');

/** Physical lines, each keeping its newline (BuildKit's scanLines). */
function physicalLines(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) break;
    out.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

function escapeRegex(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

export interface ParseOptions {
  file?: string;
}

/** Dockerfile text to instructions, the syntax level. Throws DockerfileError. */
export function parse(text: string, opts: ParseOptions = {}): Dockerfile {
  const file = opts.file ?? 'Dockerfile';
  const directives = new DirectiveParser(file);
  const lines = physicalLines(text.startsWith('\ufeff') ? text.slice(1) : text);
  const instructions: Instruction[] = [];
  const warnings: Warning[] = [];
  let escape = '\\';
  let continuation = /(^|[^\\])\\[ \t]*$/;
  let i = 0; // index of the next physical line; line numbers are i after reading
  const source = (): Source => ({ lines, escape });

  // processLine: strip the newline (and leading space on a first line), feed the
  // directive parser, and turn comment lines into nothing.
  const processLine = (raw: string, stripLeft: boolean, lineNo: number): string => {
    let token = trimNewline(raw);
    if (stripLeft) token = trimLeadingWhitespace(token);
    directives.line(token, lineNo);
    if (directives.directives.escape !== escape) {
      escape = directives.directives.escape;
      const e = escapeRegex(escape);
      continuation = new RegExp(`(^|[^${e}])${e}[ \\t]*$`);
    }
    return isComment(token) ? '' : token;
  };
  const trimContinuation = (line: string): [string, boolean] => {
    if (continuation.test(line)) return [line.replace(continuation, '$1'), false];
    return [line, true];
  };

  while (i < lines.length) {
    const raw = lines[i];
    const lineNo = ++i;
    const first = processLine(raw, true, lineNo);
    const startLine = lineNo;
    const column = raw.length - trimLeadingWhitespace(raw).length + 1;
    let [line, end] = trimContinuation(first);
    if (end && line === '') continue;

    let emptyContinuation = false;
    while (!end && i < lines.length) {
      const next = lines[i];
      const cont = processLine(next, false, ++i);
      if (isComment(next)) continue;
      if (trimLeadingWhitespace(trimNewline(cont)) === '') {
        emptyContinuation = true;
        continue;
      }
      const [joined, isEnd] = trimContinuation(cont);
      line += joined;
      end = isEnd;
    }
    if (emptyContinuation) {
      warnings.push({
        message: 'Empty continuation line found in: ' + line,
        location: loc(file, startLine, column, i),
      });
    }

    let node: Instruction;
    try {
      node = nodeFromLine(line, escape);
    } catch (e) {
      if (e instanceof LineError) {
        const err = new DockerfileError(e.code, e.message, loc(file, startLine, column, i), e.pointer(''));
        throw located(err, source());
      }
      throw e;
    }

    if (canContainHeredoc(node) && line.includes('<<')) {
      const target = node.keyword === 'ONBUILD' && node.sub ? node.sub : node;
      for (const h of heredocsFromLine(line)) {
        let content = '';
        let terminated = false;
        while (i < lines.length) {
          const body = lines[i++];
          let candidate = trimNewline(body);
          if (h.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === h.name) {
            terminated = true;
            break;
          }
          content += body;
        }
        if (!terminated) {
          const n = h.name;
          const openers = [`<<${n}`, `<<-${n}`, `<<"${n}"`, `<<-"${n}"`, `<<'${n}'`, `<<-'${n}'`];
          const err = new DockerfileError(
            'unterminated-heredoc',
            `unterminated heredoc: no line "${n}" ends the heredoc started here`,
            loc(file, startLine, column, i),
            { cmd: node.cmd, at: { kind: 'text', texts: openers } },
          );
          throw located(err, source());
        }
        target.heredocs.push({ ...h, content });
      }
      if (target !== node) node.heredocs = target.heredocs;
    }

    node.location = loc(file, startLine, column, i);
    if (node.sub) node.sub.location = node.location;
    instructions.push(node);
  }

  if (instructions.length === 0) {
    throw new DockerfileError('no-instructions', 'file with no instructions', loc(file, Math.max(i, 1), 1));
  }
  const df: Dockerfile = { file, directives: { ...directives.directives }, instructions, warnings };
  rememberSource(df, source());
  return df;
}
