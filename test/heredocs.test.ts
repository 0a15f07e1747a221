// Heredocs (`RUN <<EOF`, `COPY <<EOF /file`), against BuildKit's documented behaviour (the Dockerfile
// reference, "Here-Documents"): the dockerd 20.10 on the test machine has a frontend older than heredocs,
// so the differential suite cannot record them. What the reference says, row by row:
// - a RUN whose command is only a heredoc runs its content with the default shell;
// - `<<-` strips leading tabs from the content lines and from the delimiter line;
// - an unquoted delimiter expands ARG and ENV values in a COPY heredoc at build time; a quoted one
//   (`<<"EOF"`, `<<'EOF'`, any part quoted) copies the text as it is;
// - several heredocs in one instruction: COPY writes each to a file of its name in the destination
//   directory, and RUN gives each to the command that names it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const t = (args: string[]) => tsbuild(args, { root });
const dirs: string[] = [root];

// [what, the Dockerfile after FROM, the files (below /out) and their content]
const rows: [string, string, Record<string, string>][] = [
  [
    'RUN: only a heredoc, run by the default shell',
    'RUN <<EOF\nmkdir /out\necho "$0" > /out/shell\nEOF\n',
    {
      shell: '/bin/sh\n',
    },
  ],
  [
    'RUN <<-: leading tabs stripped (spaces kept), and the delimiter may be indented by tabs',
    'RUN mkdir /out\nRUN <<-EOF\n\techo "\ttabbed" > /out/t\n\t  echo "  spaced" >> /out/t\n\tEOF\n',
    { t: '\ttabbed\n  spaced\n' },
  ],
  [
    'COPY <<-: leading tabs of the content stripped',
    'COPY <<-EOF /out/f\n\tone\n\t\ttwo\n   three\n\tEOF\n',
    { f: 'one\ntwo\n   three\n' },
  ],
  ['COPY <<EOF without <<-: tabs kept', 'COPY <<EOF /out/f\n\tone\nEOF\n', { f: '\tone\n' }],
  [
    'COPY, unquoted delimiter: ARG and ENV expanded at build time',
    'ARG FOO=bar\nENV BAZ=qux\nCOPY <<EOF /out/f\nhello ${FOO} $BAZ\nEOF\n',
    { f: 'hello bar qux\n' },
  ],
  [
    'COPY, double-quoted delimiter: no expansion',
    'ARG FOO=bar\nCOPY <<"EOF" /out/f\nhello ${FOO} $FOO\nEOF\n',
    { f: 'hello ${FOO} $FOO\n' },
  ],
  [
    'COPY, single-quoted delimiter with <<-: no expansion, tabs stripped',
    "ARG FOO=bar\nCOPY <<-'EOF' /out/f\n\thello ${FOO}\n\tEOF\n",
    { f: 'hello ${FOO}\n' },
  ],
  [
    'RUN, quoted delimiter: the shell gets the text unexpanded',
    'RUN mkdir /out\nRUN <<"EOF" sh\nV=inner\necho "[$V]" > /out/f\nEOF\n',
    { f: '[inner]\n' },
  ],
  [
    'RUN, unquoted delimiter: the shell that runs the line expands the text before the command reads it',
    'RUN mkdir /out\nRUN <<EOF sh\nV=inner\necho "[$V]" > /out/f\nEOF\n',
    { f: '[]\n' },
  ],
  [
    'RUN, unquoted delimiter: the build arg reaches the command as a variable',
    'ARG FOO=bar\nRUN mkdir /out\nRUN <<EOF\necho "$FOO" > /out/f\nEOF\n',
    { f: 'bar\n' },
  ],
  [
    'COPY: several heredocs, each a file of its name in the destination directory',
    'COPY <<one <<two /out/\nfirst\none\nsecond\ntwo\n',
    { one: 'first\n', two: 'second\n' },
  ],
  [
    'RUN: several heredocs, each to the command that names it',
    'RUN mkdir /out\nRUN <<A cat > /out/a && <<B cat > /out/b\nI am\nfirst\nA\nI am\nsecond\nB\n',
    { a: 'I am\nfirst\n', b: 'I am\nsecond\n' },
  ],
  [
    'RUN: a heredoc with an interpreter and its flags on the command line (sh -e stops at false)',
    "RUN mkdir /out\nRUN <<'EOF' sh -e || echo stopped > /out/f\nfalse\necho went on > /out/f\nEOF\n",
    { f: 'stopped\n' },
  ],
];

for (const [what, body, files] of rows) {
  test(`heredoc: ${what}`, () => {
    const ctx = context({ Dockerfile: `FROM ${Base}\n${body}` });
    const out = tempDir('out');
    dirs.push(ctx, out);
    ok(t(['build', '-q', '-o', `type=local,dest=${out}`, ctx]));
    for (const [name, want] of Object.entries(files)) {
      assert.is(readFileSync(join(out, 'out', name), 'utf8'), want, name);
    }
  });
}

test.after(() => cleanup(...dirs));
test.run();
