// --no-cache-filter STAGE: the named stages' steps run again, and so do the stages built FROM them (their
// records hold what they made from the old result); a COPY --from misses when what it copies changed;
// every other stage's steps hit the cache. Each RUN writes a fresh random id: a step that ran again has a
// new one, a cached step the old one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const same = context({
  Dockerfile: [
    `FROM ${Base} AS gen`,
    'RUN echo fixed > /fixed && cat /proc/sys/kernel/random/uuid > /gen-id',
    `FROM ${Base} AS use`,
    'COPY --from=gen /fixed /fixed',
    'RUN cat /proc/sys/kernel/random/uuid > /use-id',
    '',
  ].join('\n'),
});
const ctx = context({
  Dockerfile: [
    `FROM ${Base} AS deps`,
    'RUN cat /proc/sys/kernel/random/uuid > /deps-id',
    `FROM ${Base} AS Tools`,
    'RUN cat /proc/sys/kernel/random/uuid > /tools-id',
    'FROM deps AS app',
    'COPY --from=tools /tools-id /tools-id',
    'RUN cat /proc/sys/kernel/random/uuid > /app-id',
    '',
  ].join('\n'),
});
const out = tempDir('ncf');

/** Builds with the extra flags; returns the ids in the result and the plain progress. */
function build(n: number, ...flags: string[]) {
  const dest = join(out, String(n));
  const r = ok(tsbuild(['build', '--progress=plain', ...flags, '-o', `type=local,dest=${dest}`, ctx], { root }));
  const id = (f: string) => readFileSync(join(dest, f), 'utf8').trim();
  return { deps: id('deps-id'), tools: id('tools-id'), app: id('app-id'), stderr: r.stderr };
}

test.after(() => cleanup(root, ctx, same, out));

test("--no-cache-filter app: app's RUN runs again, deps and tools hit", () => {
  const first = build(1);
  const cached = build(2);
  assert.equal(cached, { ...first, stderr: cached.stderr }, 'a plain rebuild is all cache hits');
  const again = build(3, '--no-cache-filter', 'app');
  assert.is.not(again.app, first.app, "app's RUN ran again");
  assert.is(again.deps, first.deps, "deps' RUN hit the cache");
  assert.is(again.tools, first.tools, "tools' RUN hit the cache");
});

test('--no-cache-filter tools: tools and app (which copies from it) run again, deps hits', () => {
  const before = build(4);
  const r = build(5, '--no-cache-filter', 'tools');
  assert.is.not(r.tools, before.tools, "tools' RUN ran again and its new file is in the image");
  assert.is.not(r.app, before.app, 'app copies from tools: rebuilt on the new result');
  assert.is(r.deps, before.deps, "deps' RUN hit the cache");
  // The records now hold the rebuilt results: a plain build reuses them, old and new never mixed.
  const plain = build(6);
  assert.equal(plain, { ...r, stderr: plain.stderr });
});

test('--no-cache-filter is repeatable, matches names case-insensitively, and warns about unknown names', () => {
  const before = build(7);
  const r = build(8, '--no-cache-filter', 'TOOLS', '--no-cache-filter', 'deps', '--no-cache-filter', 'nosuch');
  assert.is.not(r.deps, before.deps);
  assert.is.not(r.tools, before.tools);
  assert.is.not(r.app, before.app, 'app is FROM deps: rebuilt on the new result');
  assert.match(r.stderr, /--no-cache-filter nosuch: the Dockerfile has no stage named "nosuch"/);
});

test('--no-cache-filter gen: a COPY --from whose content did not change still hits', () => {
  const ids = (n: number, ...flags: string[]) => {
    const dest = join(out, `same-${n}`);
    ok(tsbuild(['build', '--progress=plain', ...flags, '-o', `type=local,dest=${dest}`, same], { root }));
    return { use: readFileSync(join(dest, 'use-id'), 'utf8') };
  };
  const first = ids(1);
  const r = ok(tsbuild(['build', '--progress=plain', '--explain', '--no-cache-filter', 'gen', same], { root }));
  assert.match(r.stderr, /\[gen 2\/2\] RUN .* miss: --no-cache-filter/);
  assert.match(r.stderr, /\[use 2\/3\] COPY .* hit/);
  assert.equal(ids(2), first, "use's RUN hit: what it copies is the same");
});

test('--no-cache-filter: --explain says why the step missed', () => {
  const r = ok(tsbuild(['build', '--progress=plain', '--explain', '--no-cache-filter', 'tools', ctx], { root }));
  assert.match(r.stderr, /\[tools 2\/2\] RUN .* miss: --no-cache-filter/);
  assert.match(r.stderr, /\[deps 2\/2\] RUN .* hit/);
});

test.run();
