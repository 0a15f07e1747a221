// The V8 flags the CLI's loader (packages/builder/bin/tsbuild.cjs) sets, and when. Once a V8 flag differs from its
// default, V8 refuses the code cache Node's built-in modules are compiled from, so every built-in loaded after it
// is compiled from source (5 ms of a 45 ms repeated pull). So: only a build sets its flag (--heap-growing-percent,
// for a large build's memory), and only once its modules and the built-ins they import are loaded; the other
// commands keep V8's defaults. Seen from inside the real command: a module preloaded with `node -r` records every
// v8.setFlagsFromString and which built-ins were loaded before and after the first one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, context, repo, tempDir } from './helpers/cli.js';

const loader = join(repo, 'packages', 'builder', 'bin', 'tsbuild.cjs');
const work = tempDir('loader-flags');
const probe = join(work, 'probe.cjs');
const report = join(work, 'report.json');
writeFileSync(
  probe,
  `const v8 = require('node:v8');
const set = v8.setFlagsFromString;
const flags = [];
let before;
const builtins = () => process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
v8.setFlagsFromString = (f) => {
  flags.push(f);
  before ??= builtins();
  return set(f);
};
process.on('exit', () => {
  const after = before ? builtins().filter((m) => !before.includes(m)) : [];
  require('node:fs').writeFileSync(${JSON.stringify(report)}, JSON.stringify({ flags, before, after }));
});
`,
);

function run(args: string[], env: Record<string, string> = {}) {
  cleanup(report);
  const r = spawnSync(process.execPath, ['-r', probe, loader, ...args], {
    env: { ...process.env, TSBUILD_ROOT: join(work, 'store'), CI: 'true', ...env },
    encoding: 'utf8',
  });
  const seen = JSON.parse(readFileSync(report, 'utf8')) as { flags: string[]; before?: string[]; after: string[] };
  return { code: r.status, stderr: r.stderr, ...seen };
}

const others: { name: string; args: string[]; code: number }[] = [
  { name: '--version', args: ['--version'], code: 0 },
  { name: 'images', args: ['images'], code: 0 },
  // Nothing listens on port 1: the pull fails, after its modules and node:http are loaded.
  { name: 'pull (refused)', args: ['pull', '127.0.0.1:1/nothing/here:1'], code: 1 },
  { name: 'push (no such image)', args: ['push', '127.0.0.1:1/nothing/here:1'], code: 1 },
];
for (const c of others) {
  test(`${c.name}: no V8 flag set`, () => {
    const r = run(c.args);
    assert.is(r.code, c.code, r.stderr);
    assert.equal(r.flags, [], 'flags set');
  });
}

test('build: --heap-growing-percent=50, set once the build and its built-ins are loaded', () => {
  const ctx = context({ Dockerfile: 'FROM scratch\nCOPY a.txt /\n', 'a.txt': 'a\n' });
  const r = run(['build', '--progress=plain', '-t', 'loader-flags:1', ctx]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.flags[0], '--heap-growing-percent=50');
  // What the store and the build import at their top: loaded while V8's flags were still the defaults.
  for (const m of ['crypto', 'fs/promises', 'net', 'os'])
    assert.ok(r.before?.includes(m), `${m} loaded before the flag (after: ${r.after.join(' ')})`);
  cleanup(ctx);
});

// A commit walks, hashes and packs a container's changed files as a build's RUN step does: with V8's own heap
// growth, a commit of 60,000 small files peaked at ~280 MB against ~225 MB with the build's flag. The flag is set
// once its modules are loaded, so a commit of nothing (no such container) shows it too.
const packers: { name: string; args: string[] }[] = [
  { name: 'commit', args: ['commit', 'no-such-container', 'loader-flags:commit'] },
  { name: 'container commit', args: ['container', 'commit', 'no-such-container', 'loader-flags:commit'] },
];
for (const c of packers) {
  test(`${c.name}: the build's --heap-growing-percent=50, once its modules are loaded`, () => {
    const r = run(c.args);
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, /no-such-container/);
    assert.is(r.flags[0], '--heap-growing-percent=50');
    assert.ok(r.before?.includes('crypto'), `crypto loaded before the flag (after: ${r.after.join(' ')})`);
  });
}

test.after(() => cleanup(work));
test.run();
