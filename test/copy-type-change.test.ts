// COPY onto a path whose type in the image differs, as BuildKit's copier (fsutil) decides it by lstat of
// each path it writes: a non-directory where the image has a directory fails ("cannot replace to
// directory ... with file"); a directory where the image has a file or a symlink fails ("cannot copy to
// non-directory: ..."); a file over a file or a symlink, and a directory merged into a directory, are fine.
// Failures name the COPY's line and exit 1, and tag nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Base, cleanup, context, ok, storeWithBase, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const t = (args: string[]) => tsbuild(args, { root });
const setup = 'RUN mkdir -p /p/dir /real && echo x > /p/dir/x && echo f > /p/file && ln -s /real /p/link';

// [what, the COPY lines (line 3 on), the context, the error (undefined: the build succeeds)]
const rows: [string, string, Record<string, string | { symlink: string }>, string | undefined][] = [
  [
    'a file over a directory',
    'COPY src/ /p/',
    { 'src/dir': 'now a file\n' },
    'cannot replace to directory /p/dir with file',
  ],
  [
    'a symlink over a directory',
    'COPY src/ /p/',
    { 'src/dir': { symlink: 'file' } },
    'cannot replace to directory /p/dir',
  ],
  ['a directory over a file', 'COPY src/ /p/', { 'src/file/y': 'y\n' }, 'cannot copy to non-directory: /p/file'],
  ['a directory over a symlink', 'COPY src/ /p/', { 'src/link/y': 'y\n' }, 'cannot copy to non-directory: /p/link'],
  [
    'a directory onto a file, as the destination',
    'COPY src/ /p/file',
    { 'src/y': 'y\n' },
    'cannot copy to non-directory: /p/file',
  ],
  [
    'from a stage: a file over a directory',
    'COPY --from=other /p/ /p/',
    {},
    'cannot replace to directory /p/dir with file',
  ],
  ['a file over a file and over a symlink', 'COPY src/ /p/', { 'src/file': 'new\n', 'src/link': 'new\n' }, undefined],
  ['a directory merged into a directory', 'COPY src/ /p/', { 'src/dir/y': 'y\n' }, undefined],
  ['a file onto a directory goes into it', 'COPY f /p/dir', { f: 'f\n' }, undefined],
];

for (const [what, copy, files, error] of rows) {
  test(`COPY: ${what}`, () => {
    const dockerfile = `FROM ${Base}\n${setup}\n${copy}\n`;
    const other = `FROM ${Base} AS other\nRUN mkdir /p && echo file > /p/dir\n`;
    const ctx = context({ Dockerfile: copy.includes('--from=other') ? other + dockerfile : dockerfile, ...files });
    const line = copy.includes('--from=other') ? 5 : 3;
    const r = t(['build', '-q', '-t', 'typechange:1', ctx]);
    if (error === undefined) {
      ok(r);
      ok(t(['rmi', 'typechange:1']));
    } else {
      assert.is(r.code, 1, r.stderr);
      assert.match(r.stderr, `Dockerfile:${line}:1: ${error}`);
      assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
      assert.is(t(['inspect', 'typechange:1']).code === 0, false, 'tagged nothing');
    }
    cleanup(ctx);
  });
}

test.after(() => cleanup(root));
test.run();
