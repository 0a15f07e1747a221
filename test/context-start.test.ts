// The build context's walk starts as soon as the CLI knows the context, the Dockerfile and the store
// (before the store is opened): a context or Dockerfile that is not there is still a usage error said
// before anything starts, and the listing begun early honours .dockerignore as a late one did.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, command, context, ok, tempDirs, tsbuild } from './helpers/cli.js';

const { temp, dirs } = tempDirs();

const usage: { name: string; args: (ctx: string) => string[]; stderr: (ctx: string) => string }[] = [
  {
    name: 'a context that does not exist',
    args: (ctx) => ['build', join(ctx, 'nothere')],
    stderr: (ctx) => `ERROR: build context "${join(ctx, 'nothere')}" not found\n`,
  },
  {
    name: 'a git URL as the context',
    args: () => ['build', 'https://github.com/docker/getting-started.git'],
    stderr: () =>
      'ERROR: build context "https://github.com/docker/getting-started.git": a URL or git repository is not ' +
      'supported (give a directory, or - for a tar on stdin)\n',
  },
  {
    name: 'a git remote as the context',
    args: () => ['build', 'git@github.com:docker/getting-started.git'],
    stderr: () =>
      'ERROR: build context "git@github.com:docker/getting-started.git": a URL or git repository is not ' +
      'supported (give a directory, or - for a tar on stdin)\n',
  },
  {
    name: 'a context that is a file',
    args: (ctx) => ['build', join(ctx, 'Dockerfile')],
    stderr: (ctx) => `ERROR: build context "${join(ctx, 'Dockerfile')}" is not a directory\n`,
  },
  {
    name: 'a context without a Dockerfile',
    args: (ctx) => ['build', join(ctx, 'empty')],
    stderr: (ctx) => `ERROR: cannot read Dockerfile ${join(ctx, 'empty', 'Dockerfile')}\n`,
  },
  {
    name: '-f naming no file',
    args: (ctx) => ['build', '-f', join(ctx, 'nothere'), ctx],
    stderr: (ctx) => `ERROR: cannot read Dockerfile ${join(ctx, 'nothere')} (from -f)\n`,
  },
];

for (const c of usage)
  test(`${c.name}: the same usage error, exit 2, nothing started`, () => {
    const ctx = context({ Dockerfile: 'FROM scratch\n', 'empty/.keep': '' });
    dirs.push(ctx);
    const root = temp('store');
    const r = tsbuild(c.args(ctx), { root });
    assert.is(r.code, 2, r.stderr);
    assert.is(r.stderr, c.stderr(ctx));
    assert.not.ok(existsSync(join(root, 'builder')), 'no stat cache written');
  });

/** A context large enough for tsbuild-walk (more than 150 entries) with files .dockerignore leaves out. */
function largeContext(): string {
  const files: Record<string, string> = {
    Dockerfile: 'FROM scratch\nCOPY . /\n',
    '.dockerignore': 'secret\n*.log\n',
    'secret/key': 'do not copy',
    'notes.log': 'do not copy',
    'build/app.Dockerfile': 'FROM scratch\nCOPY . /\n',
    'build/app.Dockerfile.dockerignore': 'notes.log\nbuild\n',
  };
  for (let i = 0; i < 300; i++) files[`many/f${i}.txt`] = `file ${i}`;
  const ctx = context(files);
  dirs.push(ctx);
  return ctx;
}

const cases: { name: string; flags: (ctx: string) => string[]; has: string[]; lacks: string[] }[] = [
  {
    name: 'the context .dockerignore',
    flags: () => [],
    has: ['many', 'build', 'Dockerfile'],
    lacks: ['secret', 'notes.log'],
  },
  {
    name: "the Dockerfile's own .dockerignore, which wins",
    flags: (ctx) => ['-f', join(ctx, 'build', 'app.Dockerfile')],
    has: ['many', 'secret', 'Dockerfile'],
    lacks: ['notes.log', 'build'],
  },
];

for (const c of cases)
  test(`a rebuild of a large context, listed by tsbuild-walk as soon as the CLI starts, honours ${c.name}`, () => {
    const ctx = largeContext();
    const root = temp('store');
    for (const run of ['first', 'rebuild']) {
      const dest = join(temp('out'), 'rootfs');
      mkdirSync(dest);
      const r = ok(
        tsbuild(['build', '--progress=plain', ...c.flags(ctx), '-o', `type=local,dest=${dest}`, ctx], {
          root,
          env: { TSBUILD_TRACE: '1' },
        }),
      );
      // The first build lists it in JS (nothing says it is large yet); the stat cache says so to the rebuild.
      if (run === 'rebuild') assert.match(r.stderr, /context listed \(tsbuild-walk\)/);
      const top = readdirSync(dest);
      for (const f of c.has) assert.ok(top.includes(f), `${run}: ${f} is copied (${top.join(' ')})`);
      for (const f of c.lacks) assert.not.ok(top.includes(f), `${run}: ${f} is left out (${top.join(' ')})`);
      if (c.has.includes('many')) assert.is(readdirSync(join(dest, 'many')).length, 300);
    }
  });

test('a rebuild whose Dockerfile fails to parse reports it as before, and ends', () => {
  const ctx = largeContext();
  const root = temp('store');
  ok(tsbuild(['build', '-q', ctx], { root }));
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nNOSUCH x\n');
  const r = tsbuild(['build', '-q', ctx], { root });
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /Dockerfile:2:1/);
});

// bin/tsbuild.cjs starts the walk of `tsbuild build [FLAGS] DIR` before the bundle loads, when the stat cache
// says the context is large and it has no .dockerignore; the build takes that walk only if it is its own.
test('a rebuild of a large context without .dockerignore takes the walk the loader started, and copies it all', () => {
  const files: Record<string, string> = { Dockerfile: 'FROM scratch\nCOPY . /\n' };
  for (let i = 0; i < 300; i++) files[`many/f${i}.txt`] = `file ${i}`;
  const ctx = context(files);
  dirs.push(ctx);
  const root = temp('store');
  const env = { TSBUILD_TRACE: '1' };
  const first = ok(tsbuild(['build', '-q', ctx], { root, env }));
  assert.not.match(first.stderr, /started by the loader/, 'no stat cache yet: nothing says the context is large');
  const dest = join(temp('out'), 'rootfs');
  mkdirSync(dest);
  const r = ok(tsbuild(['build', '-q', '-t', 'early:1', '-o', `type=local,dest=${dest}`, ctx], { root, env }));
  assert.match(r.stderr, /context walk started by the loader: taken/);
  assert.match(r.stderr, /context listed \(tsbuild-walk\): \d+ directories, 302 entries/);
  assert.is(readdirSync(join(dest, 'many')).length, 300);
  // What the loader does not understand, it leaves alone: the build lists the context itself.
  for (const args of [
    ['build', '-q', '--no-such-flag', ctx],
    ['build', '-q', '-f', '-', ctx],
    ['build', '-q', '--root', root, ctx, ctx],
  ]) {
    const other = tsbuild(args, { root, env, input: 'FROM scratch\n' });
    assert.not.match(other.stderr, /started by the loader/, args.join(' '));
  }
  // One the build refuses after the loader started its walk: the walk ends with the command.
  const bad = tsbuild(['build', '--progress=bogus', ctx], { root, env });
  assert.is(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /context walk started by the loader: not for this build, killed/);
  assert.match(bad.stderr, /--progress/);
});

test('a .dockerignore that is a symlink to /dev/zero is refused as before: the loader does not read it', () => {
  const files: Record<string, string> = { Dockerfile: 'FROM scratch\nCOPY . /\n' };
  for (let i = 0; i < 300; i++) files[`many/f${i}.txt`] = `file ${i}`;
  const ctx = context(files);
  dirs.push(ctx);
  const root = temp('store');
  ok(tsbuild(['build', '-q', ctx], { root })); // the stat cache now says the context is large
  symlinkSync('/dev/zero', join(ctx, '.dockerignore'));
  // A bound, not a measure: a loader reading /dev/zero would never end.
  const r = spawnSync(command, ['build', '-q', ctx], {
    env: { ...process.env, TSBUILD_ROOT: root, TSBUILD_TRACE: '1' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.is(r.signal, null, 'it ended by itself');
  assert.is(r.status, 2, r.stderr);
  assert.match(r.stderr, /\.dockerignore: a symlink that leads out of the build context \(to \/dev\/zero\)/);
  assert.not.match(r.stderr, /started by the loader/);
});

test('a large context with a .dockerignore is listed by the build, not the loader', () => {
  const ctx = largeContext();
  const root = temp('store');
  ok(tsbuild(['build', '-q', ctx], { root }));
  const r = ok(tsbuild(['build', '-q', ctx], { root, env: { TSBUILD_TRACE: '1' } }));
  assert.not.match(r.stderr, /started by the loader/);
  assert.match(r.stderr, /context listed \(tsbuild-walk\)/);
});

test('--help, another command and a context on stdin are as before', () => {
  const help = tsbuild(['--help'], { env: { TSBUILD_TRACE: '1' } });
  assert.is(help.code, 0, help.stderr);
  assert.match(help.stdout, /build/);
  assert.not.match(help.stderr, /loader/);
  const root = temp('store');
  const images = tsbuild(['images'], { root, env: { TSBUILD_TRACE: '1' } });
  assert.is(images.code, 0, images.stderr);
  assert.not.match(images.stderr, /loader/);
  // A context on stdin (here a Dockerfile, the context empty) is built without the loader's early walk.
  const stdin = tsbuild(['build', '-q', '-'], { root, input: 'FROM scratch\n', env: { TSBUILD_TRACE: '1' } });
  assert.is(stdin.code, 0, stdin.stderr);
  assert.not.match(stdin.stderr, /loader/);
});

test.after(() => cleanup(...dirs));
test.run();
