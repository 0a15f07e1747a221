// Layers are written in the background (builder/src/build/steps/commit.ts): the next step starts
// on a finished step's diff while that step's layer is still being tarred, compressed and
// fsynced. These tests drive the CLI through the states that makes possible: the order of
// events, a layer that fails to be written, and SIGKILL at each new state.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Base, cleanup, context, ok, storeWithBase, tsbuild, tsbuildAsync } from './helpers/cli.js';

const root = storeWithBase();
// ~16 MB of base64 text: it compresses (so every chunk goes through zlib) at ~50 ms/MiB, long
// enough for the next step to start and print while the layer is still being written.
const SlowLayer = (file: string) => `head -c 12000000 /dev/urandom | base64 > ${file}`;
const written = (stderr: string, step: string) => new RegExp(`\\[stage-0 ${step}\\] .*: layer written`).test(stderr);

/** Runs a traced build, calling `at` on every stderr chunk; `at` may kill the child. */
async function traced(args: string[], at: (stderr: string, child: ChildProcess) => void): Promise<{ code: number | null; stderr: string }> {
  const child = tsbuildAsync(['build', '--progress=plain', ...args], { root, env: { TSBUILD_TRACE: '1' } });
  let stderr = '';
  child.stdout!.resume();
  child.stderr!.on('data', (b) => { stderr += b; at(stderr, child); });
  const code = await new Promise<number | null>((r) => child.on('close', r));
  return { code, stderr };
}

test('the next step runs while the layer before it is written; the image has every layer', async () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN ${SlowLayer('/b64')}\nRUN echo second-started && wc -c < /b64 > /size\n` });
  let secondBeforeFirstLayer = false;
  const r = await traced(['-t', 'bg:order', ctx], (err) => {
    if (err.includes('second-started') && !written(err, '2/3')) secondBeforeFirstLayer = true;
  });
  assert.is(r.code, 0, r.stderr);
  assert.ok(secondBeforeFirstLayer, `the second RUN started before the first one's layer was written:\n${r.stderr}`);
  const image = JSON.parse(ok(tsbuild(['inspect', 'bg:order'], { root })).stdout);
  assert.is(image.Layers.length, image.Config.rootfs.diff_ids.length);
  const out = ok(tsbuild(['run', '--rm', 'bg:order', 'sh', '-c', 'cat /size; wc -c < /b64'], { root })).stdout.trim().split(/\s+/);
  assert.is(out[0], out[1], 'the second RUN saw the whole file');
  assert.equal(readdirSync(join(root, 'tmp')), [], 'no diff is left in tmp/');
  cleanup(ctx);
});

test('a layer that fails to be written fails the build, naming its step', async () => {
  // The COPY's layer is read from the context after the slow layer before it: shrinking a file
  // of it meanwhile makes the tar writer fail ("file shrank while being read").
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN ${SlowLayer('/b64')}\nCOPY data/ /data/\nRUN echo after-copy && sleep 2\n`, 'data/f': 'x'.repeat(100_000) });
  let shrunk = false;
  let copyLayerWaiting = false;
  const r = await traced(['-t', 'bg:fail', ctx], (err) => {
    if (!shrunk && err.includes('after-copy')) {
      shrunk = true;
      copyLayerWaiting = !written(err, '2/4'); // the slow layer is still being written, so the COPY's has not started
      truncateSync(join(ctx, 'data', 'f'), 10);
    }
  });
  assert.ok(shrunk && copyLayerWaiting, r.stderr);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /ERROR: \[stage-0 3\/4\] COPY data\/ \/data\/: writing its layer failed: data\/f: file shrank while being read/);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  assert.is(tsbuild(['inspect', 'bg:fail'], { root }).code, 1, 'nothing tagged');
  // The store is fine: with the file restored, the build succeeds, reusing the slow layer.
  writeFileSync(join(ctx, 'data', 'f'), 'x'.repeat(100_000));
  const again = ok(tsbuild(['build', '--explain', '-t', 'bg:fail', ctx], { root }));
  assert.match(again.stdout + again.stderr, /RUN head -c 12000000.*\s+hit/);
  cleanup(ctx);
});

test('SIGKILL while a later step runs on a layer being written, or while the build waits for its layers', async () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN ${SlowLayer('/b64')}\nRUN echo second-started && sleep 1 && echo x > /x\nRUN ${SlowLayer('/b64b')}\n` });
  const points: { name: string; reached: (err: string) => boolean }[] = [
    { name: 'a later step runs, the layer below it not yet written', reached: (err) => err.includes('second-started') && !written(err, '2/4') },
    { name: 'every step is done, the build waits for the last layer', reached: (err) => /#\d+ writing layers/.test(err) && !written(err, '4/4') },
  ];
  for (const p of points) {
    let killed = false;
    const r = await traced(['--no-cache', '-t', 'bg:killed', ctx], (err, child) => {
      if (!killed && p.reached(err)) { killed = true; child.kill('SIGKILL'); }
    });
    assert.ok(killed, `reached "${p.name}":\n${r.stderr}`);
    assert.not.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(root), 'no mount of the store is left');
    // The next build uses whatever the killed one left (cache records whose snapshots were
    // never adopted are unpacked from their blobs), and its image is whole.
    ok(tsbuild(['build', '-t', 'bg:after', ctx], { root }));
    const out = ok(tsbuild(['run', '--rm', 'bg:after', 'sh', '-c', 'cat /x; test -s /b64 && test -s /b64b && echo both'], { root })).stdout;
    assert.is(out.trim().split('\n').join(' '), 'x both', p.name);
    assert.equal(readdirSync(join(root, 'tmp')), [], 'tmp/ is clean once a later command opened the store');
    ok(tsbuild(['prune', '--grace', '0'], { root }));
  }
  ok(tsbuild(['build', '-t', 'bg:after-prune', ctx], { root }));
  cleanup(ctx);
});

test.after(() => cleanup(root));
test.run();
