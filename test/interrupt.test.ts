// Ctrl-C during a RUN: the sandbox is killed, its mounts are gone, nothing half-written is
// visible, the exit status is 130 and the next build of the same store works.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { Base, cleanup, context, ok, storeWithBase, tsbuild, tsbuildAsync } from './helpers/cli.js';

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

test.after(() => cleanup(root));
test.run();
