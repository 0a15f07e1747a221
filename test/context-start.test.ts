// The build context's walk starts as soon as the CLI knows the context, the Dockerfile and the store
// (before the store is opened): a context or Dockerfile that is not there is still a usage error said
// before anything starts, and the listing begun early honours .dockerignore as a late one did.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, context, ok, tempDirs, tsbuild } from './helpers/cli.js';

const { temp, dirs } = tempDirs();

const usage: { name: string; args: (ctx: string) => string[]; stderr: (ctx: string) => string }[] = [
  {
    name: 'a context that does not exist',
    args: (ctx) => ['build', join(ctx, 'nothere')],
    stderr: (ctx) => `ERROR: build context "${join(ctx, 'nothere')}" is not a directory\n`,
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

test.after(() => cleanup(...dirs));
test.run();
