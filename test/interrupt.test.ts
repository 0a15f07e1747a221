// Interruptions and concurrency through the CLI: Ctrl-C during a RUN (sandbox killed, mounts
// gone, exit 130); two builds on one store at once; SIGKILL at many points of a build, after
// which the next build, images and prune all work.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import {
  Base,
  cleanup,
  context,
  ok,
  procState,
  storeWithBase,
  tsbuild,
  tsbuildAsync,
  tsbuildP,
} from './helpers/cli.js';

const root = storeWithBase();

test('SIGINT stops the build cleanly', async () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo started && sleep 60\n` });
  const child = tsbuildAsync(['build', '--progress=plain', '-t', 'interrupted:1', ctx], { root });
  let err = '';
  child.stderr.on('data', (b) => (err += b));
  const started = Date.now();
  while (!err.includes('started') && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 50));
  assert.ok(err.includes('started'), `the RUN began: ${err}`);
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('close', r));
  assert.is(code, 130, err);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  assert.not.ok(mounts.includes(root), 'no mount of the store is left');
  assert.is(tsbuild(['inspect', 'interrupted:1'], { root }).code, 1, 'nothing tagged');
  // The store is usable: the same build without the sleep succeeds.
  const ok2 = context({ Dockerfile: `FROM ${Base}\nRUN echo fine > /f\n` });
  ok(tsbuild(['build', '-t', 'after:1', ok2], { root }));
  cleanup(ctx, ok2);
});

test('two builds at once on one store both succeed and both tags are there', async () => {
  const a = context({ Dockerfile: `FROM ${Base}\nRUN echo a > /a && sleep 0.3\nCOPY Dockerfile /df\n` });
  const b = context({ Dockerfile: `FROM ${Base}\nRUN echo b > /b && sleep 0.3\nCOPY Dockerfile /df\n` });
  const [ra, rb] = await Promise.all([
    tsbuildP(['build', '-t', 'conc:a', a], { root }),
    tsbuildP(['build', '-t', 'conc:b', b], { root }),
  ]);
  assert.is(ra.code, 0, ra.stderr);
  assert.is(rb.code, 0, rb.stderr);
  const list = ok(tsbuild(['images'], { root })).stdout;
  assert.match(list, /^conc\s+a\s/m);
  assert.match(list, /^conc\s+b\s/m);
  cleanup(a, b);
});

test('SIGKILL at random points of a build leaves a store the next build uses', async () => {
  const ctx = context({
    Dockerfile:
      `FROM ${Base}\nRUN head -c 3000000 /dev/urandom > /r && echo done\nCOPY Dockerfile /df\n` +
      `RUN cat /df > /copy\n`,
    'pad.txt': 'x'.repeat(100000),
  });
  // A deterministic spread of kill points over the build's life (startup, RUN, layer write, COPY, tag).
  for (const delay of [80, 200, 350, 500, 700, 900, 1200, 1600]) {
    const child = tsbuildAsync(['build', '--no-cache', '-t', 'killed:1', ctx], { root });
    child.stdout.resume();
    child.stderr.resume();
    const closed = new Promise((r) => child.on('close', r));
    await new Promise((r) => setTimeout(r, delay));
    child.kill('SIGKILL'); // a no-op if the build already ended
    await closed;
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  assert.not.ok(mounts.includes(root), 'no mount of the store is left');
  ok(tsbuild(['build', '-t', 'after-kill:1', ctx], { root }));
  ok(tsbuild(['images'], { root }));
  ok(tsbuild(['prune', '--grace', '0'], { root }));
  ok(tsbuild(['build', '-t', 'after-prune:1', ctx], { root }));
  cleanup(ctx);
});

test('SIGKILL between the cache records and the tag: nothing tagged, the next build hits every step', async () => {
  const ctx = context({
    Dockerfile: `FROM ${Base}\nCOPY hello.txt /hello.txt\nRUN echo ran-$((40+2)) && cat /hello.txt > /copy\n`,
    'hello.txt': 'hello\n',
  });
  // The build stops itself (SIGSTOP) once its cache records and image are written, just before the
  // tag (TSBUILD_TEST_BUILD_STOP, builder/src/solver/build.ts): the kill lands at exactly that point.
  const env = { TSBUILD_TEST_BUILD_STOP: 'tag', TSBUILD_TRACE: '1' };
  const child = tsbuildAsync(['build', '--progress=plain', '-t', 'stopped:1', ctx], { root, env });
  let err = '';
  child.stdout.resume();
  child.stderr.on('data', (b) => (err += b));
  const closed = new Promise<number | null>((r) => child.on('close', r));
  const state = () => procState(child.pid!);
  for (const end = Date.now() + 120_000; state() !== 'T' && child.exitCode === null && Date.now() < end;)
    await new Promise((r) => setTimeout(r, 20));
  assert.is(state(), 'T', `the build did not stop before its tag: ${err}`);
  child.kill('SIGKILL');
  await closed;
  assert.match(err, /ran-42/, 'the RUN ran in the killed build');
  // The layers and their cache records are done before the stages are said solved (LayerQueue.settle).
  assert.match(err, /stages solved/);
  assert.not.match(err, /image written and tagged/);
  assert.is(tsbuild(['inspect', 'stopped:1'], { root }).code, 1, 'nothing tagged');
  ok(tsbuild(['check'], { root }), 'the store checks clean');
  const again = ok(tsbuild(['build', '--progress=plain', '-t', 'stopped:1', ctx], { root }));
  assert.not.match(again.stderr, /ran-42/, 'the RUN was a cache hit');
  assert.match(again.stderr, /CACHED/);
  const out = ok(tsbuild(['run', '--rm', 'stopped:1', 'cat', '/copy'], { root })).stdout;
  assert.is(out, 'hello\n');
  ok(tsbuild(['prune', '--grace', '0'], { root }));
  ok(tsbuild(['run', '--rm', 'stopped:1', 'cat', '/copy'], { root }));
  cleanup(ctx);
});

// Ctrl-C at points where the build has no more steps to run but has not tagged yet: the build stops itself
// there (TSBUILD_TEST_BUILD_STOP, builder/src/trace.ts), the test sends SIGINT while it is stopped, then lets
// it go on (SIGCONT). The interrupt must win: exit 130, "interrupted" said, nothing tagged, no image named.
const stopPoints = [
  { point: 'layer-written', what: 'the final layer just written' },
  { point: 'image-write', what: 'the image about to be written' },
];
for (const { point, what } of stopPoints) {
  test(`SIGINT with ${what}: nothing tagged, exit 130`, async () => {
    const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo ${point} > /f\n` });
    const tag = `sigint-${point}:1`;
    const env = { TSBUILD_TEST_BUILD_STOP: point };
    const child = tsbuildAsync(['build', '--no-cache', '--progress=plain', '-t', tag, ctx], { root, env });
    let err = '';
    child.stdout.resume();
    child.stderr.on('data', (b) => (err += b));
    const closed = new Promise<number | null>((r) => child.on('close', r));
    for (
      const end = Date.now() + 120_000;
      procState(child.pid!) !== 'T' && child.exitCode === null && Date.now() < end;
    )
      await new Promise((r) => setTimeout(r, 20));
    assert.is(procState(child.pid!), 'T', `the build did not stop at ${point}: ${err}`);
    child.kill('SIGINT');
    child.kill('SIGCONT');
    const code = await closed;
    assert.is(code, 130, err);
    assert.match(err, /interrupted/);
    assert.not.match(err, /naming to/);
    assert.is(tsbuild(['inspect', tag], { root }).code, 1, 'nothing tagged');
    ok(tsbuild(['check'], { root }), 'the store checks clean');
    cleanup(ctx);
  });
}

test.after(() => cleanup(root));
test.run();
