// `tsbuild build -`, as `docker build -`: stdin holds the build context as a tar (plain or compressed),
// or a Dockerfile, and then the context is empty. -f names a file in the archive.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dirname, join } from 'node:path';
import { Base, cleanup, command, context, storeWithBase, tempDir } from './helpers/cli.js';

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

// A tar may hold a directory without write permission (0555; its removal without CAP_DAC_OVERRIDE is in
// packages/sys/test/rmtree.test.ts). The context is unpacked in the store (its tmp/, cleaned of a dead
// build's leftovers), never in $TMPDIR (here one that does not exist): untrusted input is written nowhere else.
const ro = tempDir('ro-tar');
mkdirSync(join(ro, 'ro'));
writeFileSync(join(ro, 'ro', 'f'), 'x\n');
writeFileSync(join(ro, 'Dockerfile'), `FROM ${Base}\nCOPY ro /ro\nRUN test -f /ro/f\n`);
chmodSync(join(ro, 'ro'), 0o555);
const roTar = execFileSync('tar', ['-c', '-C', ro, '.']);
const noTmp = join(tempDir('tmpdir'), 'none');

test('build - unpacks in the store, not $TMPDIR, and removes it: a 0555 directory holding a file', () => {
  const r = spawnSync(command, ['build', '-q', '-'], {
    input: roTar,
    env: { ...process.env, TSBUILD_ROOT: root, TMPDIR: noTmp },
    encoding: 'utf8',
  });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, '');
  assert.equal(
    readdirSync(join(root, 'tmp')).filter((n) => n.startsWith('stdin-')),
    [],
  );
});

test.after(() => {
  chmodSync(join(ro, 'ro'), 0o755);
  cleanup(root, tree, ro, dirname(noTmp));
});
test.run();
