// `tsbuild build -`, as `docker build -`: stdin holds the build context as a tar (plain or compressed),
// or a Dockerfile, and then the context is empty. -f names a file in the archive.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Base, cleanup, command, context, storeWithBase } from './helpers/cli.js';

const root = storeWithBase();
const tree = context({
  Dockerfile: `FROM ${Base}\nCOPY f /f\nRUN test "$(cat /f)" = in-the-tar\n`,
  f: 'in-the-tar\n',
  'sub/Dfile': `FROM ${Base}\nCOPY . /c\nRUN test -f /c/sub/Dfile && test -f /c/f\n`,
});
const tar = execFileSync('tar', ['-c', '-C', tree, '.']);
const tgz = execFileSync('gzip', ['-c'], { input: tar });
const text = (s: string) => Buffer.from(s);

const cases: Array<[string, Buffer, string[], number, RegExp]> = [
  ['a Dockerfile: the context is empty', text(`FROM ${Base}\nCOPY . /c\nRUN test -z "$(ls -A /c)"\n`), [], 0, /^$/],
  ['a tar: its Dockerfile, its files', tar, [], 0, /^$/],
  ['a gzip tar, -f a file in it', tgz, ['-f', 'sub/Dfile'], 0, /^$/],
  ['a gzip tar, -f with .. stays in it', tgz, ['-f', '../../sub/Dfile'], 0, /^$/],
  ['a Dockerfile and -f', text(`FROM ${Base}\n`), ['-f', 'Other'], 2, /-f Other: the Dockerfile is on stdin/],
  ['a tar and -f -', tar, ['-f', '-'], 2, /stdin cannot be both the build context and the Dockerfile/],
  ['a Dockerfile with an error', text('FROM\n'), [], 2, /^ERROR: <stdin>:1:1: /m],
];

test('build - reads the context or the Dockerfile from stdin', () => {
  for (const [name, input, args, code, err] of cases) {
    const r = spawnSync(command, ['build', '-q', ...args, '-'], {
      input,
      env: { ...process.env, TSBUILD_ROOT: root },
      encoding: 'utf8',
    });
    assert.is(r.status, code, `${name}\n${r.stderr}`);
    assert.match(r.stderr, err, name);
    if (code === 0) assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/, name);
  }
  // The unpacked context is this build's own: nothing of it is left behind.
  assert.equal(
    readdirSync(tmpdir()).filter((n) => n.startsWith('tsbuild-stdin-')),
    [],
  );
});

test.after(() => cleanup(root, tree));
test.run();
