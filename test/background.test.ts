// Layers are written in the background (builder/src/solver/ops/commit.ts): the next step starts
// on a finished step's diff while that step's layer is still being tarred, compressed and
// fsynced. These tests drive the CLI through the states that makes possible: the order of
// events, a layer that fails to be written, and SIGKILL at each new state.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild, tsbuildAsync } from './helpers/cli.js';

const root = storeWithBase();
// ~4 MB of base64 text: a layer that goes through zlib in several chunks.
const BigFile = (file: string) => `head -c 3000000 /dev/urandom | base64 > ${file}`;
const written = (stderr: string, step: string) => new RegExp(`\\[stage-0 ${step}\\] .*: layer written`).test(stderr);

/**
 * No layer of the build is written until the test opens this gate (TSBUILD_TEST_LAYER_GATE, see
 * builder/src/solver/ops/commit.ts): the build stays in the state a test checks for as long as
 * it needs, however fast or loaded the machine.
 */
const gates: string[] = [];
class Gate {
  readonly path = join(gates[gates.push(tempDir('layer-gate')) - 1], 'open');
  open(): void {
    writeFileSync(this.path, '');
  }
  get opened(): boolean {
    return existsSync(this.path);
  }
}

/**
 * Runs a traced build behind a closed layer gate, calling `at` on every stderr chunk; `at` may
 * open the gate or kill the child. A build that never reaches the state a test waits for would
 * wait forever: after `deadlineMs` the gate is opened for it, and `forced` says so (a failure).
 */
type At = (stderr: string, child: ChildProcess) => void;
async function traced(args: string[], gate: Gate, at: At, deadlineMs = 120_000) {
  const env = { TSBUILD_TRACE: '1', TSBUILD_TEST_LAYER_GATE: gate.path };
  const child = tsbuildAsync(['build', '--progress=plain', ...args], { root, env });
  let stderr = '';
  let forced = false;
  const timer = setTimeout(() => {
    forced = !gate.opened;
    gate.open();
  }, deadlineMs);
  child.stdout.resume();
  child.stderr.on('data', (b) => {
    stderr += b;
    at(stderr, child);
  });
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearTimeout(timer);
  return { code, stderr, forced };
}

test('the next step runs while the layer before it is written; the image has every layer', async () => {
  const ctx = context({
    Dockerfile: `FROM ${Base}\nRUN ${BigFile('/b64')}\nRUN echo second-started && wc -c < /b64 > /size\n`,
  });
  const gate = new Gate();
  // The gate opens only once the second RUN has printed: had it waited for the first one's layer,
  // it could never start (until the deadline forces the gate).
  const r = await traced(['-t', 'bg:order', ctx], gate, (err) => {
    if (err.includes('second-started') && !gate.opened) gate.open();
  });
  assert.is(r.code, 0, r.stderr);
  assert.not.ok(r.forced, `the second RUN did not start before the first one's layer was written:\n${r.stderr}`);
  assert.ok(written(r.stderr, '2/3'), r.stderr);
  const image = JSON.parse(ok(tsbuild(['inspect', 'bg:order'], { root })).stdout);
  assert.is(image.Layers.length, image.ImageConfig.rootfs.diff_ids.length);
  const out = ok(tsbuild(['run', '--rm', 'bg:order', 'sh', '-c', 'cat /size; wc -c < /b64'], { root }))
    .stdout.trim()
    .split(/\s+/);
  assert.is(out[0], out[1], 'the second RUN saw the whole file');
  assert.equal(readdirSync(join(root, 'tmp')), [], 'no diff is left in tmp/');
  cleanup(ctx);
});

test('a layer that fails to be written fails the build, naming its step', async () => {
  // The COPY's layer is read from the context once the layers before it are written, which the
  // gate holds back until the step after the COPY runs: a file of it shrunk meanwhile makes the tar
  // writer fail ("file shrank while being read").
  const ctx = context({
    Dockerfile: `FROM ${Base}\nRUN ${BigFile('/b64')}\nCOPY data/ /data/\nRUN echo after-copy\n`,
    'data/f': 'x'.repeat(100_000),
  });
  const gate = new Gate();
  let copyLayerWaiting = false;
  const r = await traced(['-t', 'bg:fail', ctx], gate, (err) => {
    if (!gate.opened && err.includes('after-copy')) {
      copyLayerWaiting = !written(err, '3/4');
      truncateSync(join(ctx, 'data', 'f'), 10);
      gate.open();
    }
  });
  assert.ok(copyLayerWaiting && !r.forced, r.stderr);
  assert.is(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /ERROR: \[stage-0 3\/4\] COPY data\/ \/data\/: writing its layer failed: data\/f: file shrank while being read/,
  );
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  assert.is(tsbuild(['inspect', 'bg:fail'], { root }).code, 1, 'nothing tagged');
  // The store is fine: with the file restored, the build succeeds, reusing the first RUN's layer.
  writeFileSync(join(ctx, 'data', 'f'), 'x'.repeat(100_000));
  const again = ok(tsbuild(['build', '--explain', '-t', 'bg:fail', ctx], { root }));
  assert.match(again.stdout + again.stderr, /RUN head -c 3000000.*\s+hit/);
  cleanup(ctx);
});

test('a step fails while a layer fails to be written: the layers written are adopted, no diff is left', async () => {
  // The RUN after the COPY fails; the build then waits for its layers (the gate opens once that RUN
  // has said it ran), the COPY's fails (its file shrank) and the first RUN's is written: its diff
  // becomes that layer's snapshot, the COPY's diff is removed.
  const ctx = context({
    Dockerfile: `FROM ${Base}\nRUN ${BigFile('/b64')}\nCOPY data/ /data/\nRUN echo step-fails && exit 3\n`,
    'data/f': 'x'.repeat(100_000),
  });
  const gate = new Gate();
  const r = await traced(['--no-cache', '-t', 'bg:both-fail', ctx], gate, (err) => {
    if (!gate.opened && err.includes('step-fails')) {
      truncateSync(join(ctx, 'data', 'f'), 10);
      gate.open();
    }
  });
  assert.ok(!r.forced, r.stderr);
  assert.is(r.code, 1, r.stderr);
  assert.ok(written(r.stderr, '2/4'), `the first RUN's layer is written:\n${r.stderr}`);
  assert.not.ok(written(r.stderr, '3/4'), `the COPY's layer failed:\n${r.stderr}`);
  assert.equal(readdirSync(join(root, 'tmp')), [], 'no diff is left in tmp/');
  cleanup(ctx);
});

test('a context file swapped for a symlink to a host file while its COPY waits for its layer: not read', async () => {
  // The layer of a COPY of a directory is read from the context after cp has copied it into the snapshot: a
  // hostile context may put a link in place of a file in between. The layer must not take the host file's
  // content (nor the snapshot: cp copied the file). The tree is over a tar chunk, so its layer is hashed on a
  // worker thread, and the failure must reach the build through that path too.
  const host = tempDir('host-secret');
  const secret = 'host-secret-' + 'S'.repeat(40);
  writeFileSync(join(host, 'secret'), secret);
  const ctx = context({
    Dockerfile: `FROM ${Base}\nCOPY tree/ /app/\nRUN echo after-copy\n`,
    'tree/a-big': 'b'.repeat(1_500_000),
    'tree/victim': 'the real file\n',
    'tree/z': 'z\n',
  });
  const gate = new Gate();
  let swapped = false;
  const r = await traced(['-t', 'bg:swap', ctx], gate, (err) => {
    // "after-copy": cp is done (the RUN waits for the COPY's diff) and the COPY's layer is held by the gate.
    if (!gate.opened && err.includes('after-copy')) {
      rmSync(join(ctx, 'tree', 'victim'));
      symlinkSync(join(host, 'secret'), join(ctx, 'tree', 'victim'));
      swapped = !written(err, '2/3');
      gate.open();
    }
  });
  assert.ok(swapped && !r.forced, r.stderr);
  assert.is(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /ERROR: \[stage-0 2\/3\] COPY tree\/ \/app\/: writing its layer failed: \S*victim: the file changed.*symlink/,
    r.stderr,
  );
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  // Nothing in the store holds the host file's content: no blob, no snapshot, no temp file.
  const found = spawnSync('grep', ['-rlF', secret, root], { encoding: 'utf8' });
  assert.is(found.stdout, '', 'the host file was read into the store');
  cleanup(ctx, host);
});

test('SIGKILL while a later step runs on a layer being written, or while the build waits for its layers', async () => {
  const ctx = context({
    Dockerfile:
      `FROM ${Base}\nRUN ${BigFile('/b64')}\nRUN echo second-started && echo x > /x\n` + `RUN ${BigFile('/b64b')}\n`,
  });
  const points: { name: string; reached: (err: string) => boolean }[] = [
    { name: 'a later step runs, the layer below it not yet written', reached: (err) => err.includes('second-started') },
    { name: 'every step is done, the build waits for its layers', reached: (err) => /#\d+ writing layers/.test(err) },
  ];
  for (const p of points) {
    // The gate stays shut: no layer is written before the kill.
    const gate = new Gate();
    let killed = false;
    const r = await traced(['--no-cache', '-t', 'bg:killed', ctx], gate, (err, child) => {
      if (!killed && p.reached(err)) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    assert.ok(killed && !r.forced, `reached "${p.name}":\n${r.stderr}`);
    assert.not.ok(written(r.stderr, '\\d/4'), 'no layer was written before the kill');
    assert.not.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(root), 'no mount of the store is left');
    // The next build uses whatever the killed one left (cache records whose snapshots were
    // never adopted are unpacked from their blobs), and its image is whole.
    ok(tsbuild(['build', '-t', 'bg:after', ctx], { root }));
    const out = ok(
      tsbuild(['run', '--rm', 'bg:after', 'sh', '-c', 'cat /x; test -s /b64 && test -s /b64b && echo both'], { root }),
    ).stdout;
    assert.is(out.trim().split('\n').join(' '), 'x both', p.name);
    assert.equal(readdirSync(join(root, 'tmp')), [], 'tmp/ is clean once a later command opened the store');
    ok(tsbuild(['prune', '--grace', '0'], { root }));
  }
  ok(tsbuild(['build', '-t', 'bg:after-prune', ctx], { root }));
  cleanup(ctx);
});

// The new layers' diffs become snapshots while the image is written (build.ts): when the build
// returns they are there, each a directory of snapshots/, and nothing of them is left in tmp/.
test('a build returns with its new layers adopted as snapshots, none left in tmp/', async () => {
  const ctx = context({
    Dockerfile: `FROM ${Base}\nCOPY a /a\nRUN cat /a > /b\nRUN echo c > /c\n`,
    a: `${Date.now()}\n`,
  });
  const snapshots = () => readdirSync(join(root, 'snapshots')).filter((n) => !n.includes('.')).length;
  // The base's own snapshot made first (a RUN on it), so that the count below is of the new layers.
  const warm = context({ Dockerfile: `FROM ${Base}\nRUN true\n` });
  ok(tsbuild(['build', '-t', 'bg:base', warm], { root }));
  cleanup(warm);
  const before = snapshots();
  ok(tsbuild(['build', '-t', 'bg:adopted', ctx], { root }));
  assert.is(snapshots(), before + 3, 'a snapshot for each of the three new layers');
  assert.equal(
    readdirSync(join(root, 'tmp')).filter((n) => /^(run|copy)-/.test(n)),
    [],
    'a diff left in tmp/',
  );
  cleanup(ctx);
});

test('a cache record that fails to be written fails the build: nothing tagged, the store usable', async () => {
  // The tag (the build's commit point) waits for the records: with cache/ a read-only bind mount of
  // itself (binds root too, on any filesystem) every record's rename into it fails.
  const store = storeWithBase();
  const cache = join(store, 'cache');
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo made > /made\n` });
  try {
    assert.is(spawnSync('mount', ['--bind', cache, cache]).status, 0, 'mount --bind');
    assert.is(spawnSync('mount', ['-o', 'remount,bind,ro', cache]).status, 0, 'remount ro');
    const r = tsbuild(['build', '--progress=plain', '-t', 'bg:records', ctx], { root: store });
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, /ERROR: (EROFS|EXDEV)[^\n]*, rename .*\/cache\//);
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
    assert.is(tsbuild(['inspect', 'bg:records'], { root: store }).code, 1, 'nothing tagged');
  } finally {
    while (spawnSync('umount', [cache]).status === 0);
  }
  ok(tsbuild(['check'], { root: store }), 'the store checks clean');
  ok(tsbuild(['build', '-t', 'bg:records', ctx], { root: store }));
  assert.is(ok(tsbuild(['run', '--rm', 'bg:records', 'cat', '/made'], { root: store })).stdout, 'made\n');
  cleanup(ctx, store);
});

test('the stat cache is written while a RUN runs once no step reads the context, before any layer', async () => {
  // More entries than a context listed in JS (walk.ts SmallContext): a small one's stat cache is written at the end.
  const many = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`app/f${i}`, `${i}\n`]));
  const ctx = context({
    Dockerfile: `FROM ${Base}\nCOPY app/ /app/\nRUN cat /app/a.txt\n`,
    'app/a.txt': 'one\n',
    ...many,
  });
  const dir = join(root, 'builder', 'statcache');
  const others = new Set(existsSync(dir) ? readdirSync(dir) : []);
  ok(tsbuild(['build', '-q', '-t', 'bg:statcache', ctx], { root }));
  const file = join(
    dir,
    readdirSync(dir).find((n) => !others.has(n))!,
  );
  const first = statSync(file).ino;
  writeFileSync(join(ctx, 'app', 'a.txt'), 'two\n');
  // A file changed within the last second is not remembered (its ctime may change again unseen): wait it out.
  await new Promise((r) => setTimeout(r, 1100));
  // No layer is written until the gate opens, so the build cannot reach its end (where the stat cache was
  // written before): the gate opens once the file has been replaced, which only the RUN's start now does.
  const gate = new Gate();
  const poll = setInterval(() => {
    if (!gate.opened && statSync(file).ino !== first) gate.open();
  }, 10);
  const r = await traced(['-t', 'bg:statcache', ctx], gate, () => {}, 60_000);
  clearInterval(poll);
  assert.is(r.code, 0, r.stderr);
  assert.not.ok(r.forced, `the stat cache was not written before the build's layers:\n${r.stderr}`);
  // What it wrote is whole: the next build reads no file to know the context.
  const again = ok(
    tsbuild(['build', '--progress=plain', '-t', 'bg:statcache', ctx], { root, env: { TSBUILD_TRACE: '1' } }),
  );
  assert.match(again.stderr, /app: content digest \(0 files read so far\)/);
  assert.match(again.stderr, /#3 CACHED/);
  cleanup(ctx);
});

test.after(() => cleanup(root, ...gates));
test.run();
