// A build lets go of its context's stat cache when it ends, whatever way it ends: the cache is read
// from an open file as lookups reach its rows, and that file (often an old one, replaced by a later
// save) must not stay open in a process that runs builds one after another.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '@tsbuild/layerstore';
import { statCacheDir } from '../src/context/context.js';
import { StatCache } from '../src/context/statcache.js';
import { build, dryRun } from '../src/solver/build.js';
import { createReporter } from '../src/progress/index.js';

const base = mkdtempSync(join(tmpdir(), 'tsbuild-context-release-'));

/** This process's open files that are the stat cache (or an old one, replaced since). */
function openCaches(file: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(file)) n++;
    } catch {
      // closed meanwhile (the readdir's own fd)
    }
  }
  return n;
}

const ends: [name: string, dockerfile: string, dry: boolean][] = [
  ['a dry run', 'FROM scratch\nCOPY . /\n', true],
  ['a build whose Dockerfile does not parse', 'FROM scratch\nNOSUCH x\n', false],
  ['a build whose COPY source is missing', 'FROM scratch\nCOPY nothere /\n', false],
  ['a build that succeeds', 'FROM scratch\nCOPY . /\n', false],
];

for (const [name, dockerfile, dry] of ends)
  test(`${name} leaves no stat cache file open`, async () => {
    const ctx = join(base, `ctx-${name.replace(/\W+/g, '-')}`);
    mkdirSync(join(ctx, 'app'), { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(ctx, 'app', `f${i}`), `${i}`);
    const root = join(base, `store-${name.replace(/\W+/g, '-')}`);
    const store = await Store.open(root);
    const reporter = await createReporter('quiet');
    const request = (text: string) => ({
      store,
      contextDir: ctx,
      dockerfilePath: join(ctx, 'Dockerfile'),
      dockerfileIsFile: false,
      dockerfileText: text,
      tags: [],
      buildArgs: {},
      noCache: false,
      network: 'none' as const,
      secrets: new Map(),
      reporter,
      signal: new AbortController().signal,
    });
    // A first build leaves a stat cache for the context.
    await build(request('FROM scratch\nCOPY app /app\n'));
    const file = StatCache.fileFor(statCacheDir(root), ctx);
    assert.ok(StatCache.sizeHint(statCacheDir(root), ctx) > 0, 'the stat cache is there');
    assert.is(openCaches(file), 0, 'the first build let go of it');
    await (dry ? dryRun(request(dockerfile)) : build(request(dockerfile))).catch(() => undefined);
    reporter.close();
    assert.is(openCaches(file), 0, 'no stat cache file is left open');
  });

test.after(() => rmSync(base, { recursive: true, force: true }));
test.run();
