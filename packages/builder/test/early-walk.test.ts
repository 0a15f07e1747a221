// The context walk bin/tsbuild.cjs starts before the bundle loads is a guess: a build takes it only when it
// is exactly the walk the build would start (sameWalk), and whatever does not take it kills and reaps it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildContext } from '../src/context/context.js';
import { sameWalk, type EarlyWalk, type WalkFor } from '../src/context/early.js';
import { nativeWalker, spawnWalker } from '../src/context/walk.js';
import { main } from '../src/cli/main.js';
import { blockingWalker } from './stand-in-walkers.js';

const base = mkdtempSync(join(tmpdir(), 'tsbuild-early-'));
let n = 0;
const fresh = (what: string) => {
  const d = join(base, `${what}-${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
};

const key: WalkFor = {
  dir: '/ctx',
  dockerfile: '/ctx/Dockerfile',
  statCacheDir: '/store/builder/statcache',
  ignore: '',
  walker: '/w/tsbuild-walk',
  args: ['/ctx'],
};

const differences: [string, Partial<WalkFor>][] = [
  ['another context', { dir: '/ctx2' }],
  ['another Dockerfile', { dockerfile: '/ctx/other.Dockerfile' }],
  ['a Dockerfile from stdin', { dockerfile: undefined }],
  ['another store', { statCacheDir: '/other/builder/statcache' }],
  ['no store', { statCacheDir: undefined }],
  ['a .dockerignore', { ignore: 'node_modules\n' }],
  ['other .dockerignore bytes', { ignore: ' ' }],
  ['another walker', { walker: '/other/tsbuild-walk' }],
  ['no walker', { walker: undefined }],
  ['a pruned directory', { args: ['/ctx', '--prune', 'node_modules'] }],
  ['another listed directory', { args: ['/ctx2'] }],
];

test('sameWalk: the same walk when every part is the same', () => {
  assert.ok(sameWalk(key, { ...key, args: [...key.args] }));
});

for (const [name, change] of differences)
  test(`sameWalk: not the same walk with ${name}`, () => {
    assert.not.ok(sameWalk(key, { ...key, ...change }));
    assert.not.ok(sameWalk({ ...key, ...change }, key));
  });

/**
 * A context, and another whose one directory marks a listing as its (directories: match() hashes files, and
 * a file listed from another directory is not there to hash).
 */
function contexts(): { ctx: string; other: string } {
  const ctx = fresh('ctx');
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\n');
  mkdirSync(join(ctx, 'mine'));
  const other = fresh('other');
  mkdirSync(join(other, 'marker'));
  return { ctx, other };
}

/** A stand-in for tsbuild-walk that lists `other` whatever it is asked: its listing shows it was used. */
function misdirectedWalker(other: string): string {
  const walker = join(fresh('walker'), 'tsbuild-walk');
  writeFileSync(walker, `#!/bin/sh\nexec '${nativeWalker()!}' '${other}'\n`, { mode: 0o755 });
  return walker;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 'SIGKILL'); // and a failed test leaves nothing running either
    return true;
  } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'ESRCH');
    return false;
  }
};

/** What bin/tsbuild.cjs would hand over for a build of ctx (no .dockerignore, nothing pruned). */
function early(ctx: string, cache: string, walker: string, change: Partial<WalkFor> = {}): EarlyWalk {
  const w = { dir: ctx, dockerfile: join(ctx, 'Dockerfile'), statCacheDir: cache, ignore: '', walker, args: [ctx] };
  return { ...w, ...change, spawned: spawnWalker(walker, [ctx]) };
}

const names = async (c: BuildContext) => (await c.match('*')).map((e) => e.rel).sort();

test('a walk started for exactly this build is the listing the build reads', async () => {
  const { ctx, other } = contexts();
  const cache = fresh('cache');
  const walker = misdirectedWalker(other);
  const started = BuildContext.start(ctx, join(ctx, 'Dockerfile'), cache, walker, early(ctx, cache, walker));
  const c = await started.open();
  assert.equal(await names(c), ['marker']);
  await started.cancel();
});

const misses: [string, (ctx: string) => Partial<WalkFor>, ((ctx: string) => void)?][] = [
  ['for another context', () => ({ dir: fresh('ctx') })],
  ['for another Dockerfile', (ctx) => ({ dockerfile: join(ctx, 'other.Dockerfile') })],
  ['for another store', () => ({ statCacheDir: fresh('cache') })],
  ['without the .dockerignore the build reads', () => ({}), (ctx) => writeFileSync(join(ctx, '.dockerignore'), 'x*\n')],
  [
    "without the Dockerfile's own .dockerignore",
    () => ({}),
    (ctx) => writeFileSync(join(ctx, 'Dockerfile.dockerignore'), 'x*\n'),
  ],
  ['with other walker arguments', (ctx) => ({ args: [ctx, '--prune', 'x'] })],
];

for (const [name, change, prepare] of misses)
  test(`a walk started ${name} is killed, and the build lists its context itself`, async () => {
    const { ctx } = contexts();
    prepare?.(ctx);
    const cache = fresh('cache');
    const { walker, pid } = blockingWalker(fresh('walker'));
    const e = early(ctx, cache, walker, change(ctx));
    const p = await pid();
    // Its own walker is the real one: the stand-in was asked for one walk only.
    const started = BuildContext.start(ctx, join(ctx, 'Dockerfile'), cache, undefined, e);
    const c = await started.open();
    assert.ok((await names(c)).includes('mine'));
    await started.cancel();
    assert.not.ok(alive(p), 'no walker is left behind');
  });

const commands: [string, (ctx: string) => string[], number][] = [
  ['a build refused for a bad flag value', (ctx) => ['build', '--progress=bogus', ctx], 2],
  ['a build of a context that is not there', (ctx) => ['build', join(ctx, 'nothere')], 2],
  ['--help', () => ['--help'], 0],
  ['build --help', (ctx) => ['build', '--help', ctx], 0],
  ['version', () => ['version'], 0],
];

for (const [name, argv, code] of commands)
  test(`${name}: the walk the loader started is killed and reaped before main() returns`, async () => {
    const { ctx } = contexts();
    const { walker, pid } = blockingWalker(fresh('walker'));
    const e = early(ctx, fresh('cache'), walker);
    const p = await pid();
    const write = process.stdout.write.bind(process.stdout);
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = process.stderr.write = () => true; // the command's usage and errors
    let got: number;
    try {
      got = await main(argv(ctx), e);
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
    assert.is(got, code);
    assert.not.ok(alive(p), 'no walker is left behind');
  });

test.after(() => rmSync(base, { recursive: true, force: true }));
test.run();
