// The help the CLI prints is rendered from the flag specs (packages/builder/src/cli/flags.ts): every
// command listed by `tsbuild --help` has a `--help` of its own that exits 0, and rejects an unknown
// flag with exit 2 naming it. The flags documented in docs/cli.md and docs/containers.md for build
// and run all appear in their --help. Needs no store and no root.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repo, tsbuild } from './helpers/cli.js';

const top = tsbuild(['--help']);
const listed = [...top.stdout.matchAll(/^ {2}([a-z]+) {2,}\S/gm)].map((m) => m[1]);

test('tsbuild --help lists the commands and exits 0', () => {
  assert.is(top.code, 0, top.stderr);
  for (const c of ['build', 'run', 'ps', 'exec', 'images', 'pull', 'push', 'volume', 'parse'])
    assert.ok(listed.includes(c), `${c} in\n${top.stdout}`);
});

// Where an unknown flag is parsed: the command itself, or its first subcommand.
const sub: Record<string, string[]> = {
  volume: ['volume', 'ls'],
  container: ['container', 'ls'],
  image: ['image', 'ls'],
  cache: ['cache', 'ls'],
};

test('every listed command: --help exits 0, an unknown flag exits 2 naming it', () => {
  assert.ok(listed.length >= 20, listed.join(' '));
  for (const c of listed) {
    const h = tsbuild([c, '--help']);
    assert.is(h.code, 0, `${c} --help: ${h.stderr}`);
    assert.ok(h.stdout.startsWith(`Usage: tsbuild ${c} `), `${c} --help:\n${h.stdout}`);
    const bad = tsbuild([...(sub[c] ?? [c]), '--frobnicate', 'x'], { root: '/nonexistent-tsbuild-help-root' });
    assert.is(bad.code, 2, `${c} --frobnicate: ${bad.stderr}`);
    assert.match(bad.stderr, /^ERROR: unknown flag: --frobnicate$/m, c);
  }
});

/** The `--flag` names in the option table of a section of a doc (up to the next heading). */
function documentedFlags(doc: string, heading: RegExp): string[] {
  const text = readFileSync(join(repo, 'docs', doc), 'utf8');
  const start = text.search(heading);
  assert.ok(start >= 0, `${heading} in docs/${doc}`);
  const section = text.slice(start).split(/\n#{2,3} /)[0];
  const rows = section.split('\n').filter((l) => l.startsWith('| `'));
  return [...new Set(rows.flatMap((r) => [...r.split('|')[1].matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1])))];
}

const documented: [string, string, RegExp][] = [
  ['build', 'cli.md', /^## Build$/m],
  ['run', 'containers.md', /^## `tsbuild run` options$/m],
];
for (const [command, doc, heading] of documented)
  test(`tsbuild ${command} --help shows every flag docs/${doc} documents`, () => {
    const flags = documentedFlags(doc, heading);
    assert.ok(flags.length >= 10, flags.join(' '));
    const help = tsbuild([command, '--help']).stdout;
    for (const f of flags) assert.match(help, new RegExp(`--${f}\\b`), `--${f} in ${command} --help`);
  });

test('-h is help, except for run and exec (docker keeps -h for them)', () => {
  assert.is(tsbuild(['images', '-h']).code, 0);
  assert.match(tsbuild(['images', '-h']).stdout, /^Usage: tsbuild images /);
  const r = tsbuild(['exec', '-h'], { root: '/nonexistent-tsbuild-help-root' });
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /unknown shorthand flag: 'h' in -h/);
});

test.run();
