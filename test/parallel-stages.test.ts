// Many stages whose RUN steps run at once (a build of parallel stages): each running step listens to the
// build's one abort signal (Ctrl-C stops it), and a dozen at once is normal, not the listener leak Node's
// MaxListenersExceededWarning would print to the user's terminal in the middle of the progress.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';

const Stages = 14;
const root = storeWithBase();
const names = Array.from({ length: Stages }, (_, i) => `s${i + 1}`);
const ctx = context({
  Dockerfile: [
    ...names.flatMap((n) => [`FROM ${Base} AS ${n}`, `RUN sleep 0.5 && echo ${n} > /${n}`]),
    `FROM ${Base}`,
    ...names.map((n) => `COPY --from=${n} /${n} /out/${n}`),
    '',
  ].join('\n'),
});
const out = tempDir('parallel');

test.after(() => cleanup(root, ctx, out));

test(`${Stages} stages' RUN steps at once: built, and nothing but the build's own output on stderr`, () => {
  const r = ok(tsbuild(['build', '--progress=plain', '-o', `type=local,dest=${out}`, ctx], { root }));
  for (const n of names) assert.is(readFileSync(join(out, 'out', n), 'utf8'), `${n}\n`, `${n}'s file`);
  assert.not.match(r.stderr, /Warning|\(node:\d+\)/, 'no Node warning among the progress');
});

test.run();
