// The repository is self-contained: a fresh clone with nothing beside it builds and passes its tests.
// No tracked file outside docs/ may name a folder beside the clone, a path of the machine it was
// written on, or build a path that climbs above the repository root.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { skip } from '@tsbuild/testkit';
import { repo } from './helpers/cli.js';

// Built from pieces so that this file does not match its own rules.
const DOTDOT = '..';
const SHARED = `${DOTDOT}/shared`;
const MACHINE = ['', 'work', ''].join('/');

/**
 * Folders whose files are Dockerfiles and their expected outputs: the absolute paths in them are paths inside
 * an image (a WORKDIR, a mount target), never read on the host.
 */
const imagePathData = ['packages/parser/test/fixtures/', 'packages/parser/test/conformance/'];

/**
 * How many folders a relative path may climb from a file before it leaves the repository. TypeScript
 * under packages/ and test/ runs compiled from one folder deeper (dist/).
 */
function depth(path: string): number {
  const dirs = path.split('/').length - 1;
  const compiled = /\.ts$/.test(path) && !path.endsWith('.d.ts') && /^(packages\/[^/]+|test)\//.test(path);
  return dirs + (compiled ? 1 : 0);
}

// A run of string arguments made only of `..` segments: join(here, '..', '..'), resolve('../..'),
// new URL('../../', import.meta.url).
const upLiteral = String.raw`(?:'(?:\.\.\/?)+'|"(?:\.\.\/?)+")`;
const upRun = new RegExp(`${upLiteral}(?:\\s*,\\s*${upLiteral})*`, 'g');
// A shell script's own folder, then `/..` segments: "$(dirname "$0")/../..".
const shellUp = /dirname "?\$0"?\)((?:\/\.\.)+)/g;
// A path built from the repository root itself and then climbing: the root variable, then a `..` argument.
const fromRoot = /\b(?:repo|repoRoot)\s*,\s*['"]\.\.(?:\/|['"])/;
const machinePath = new RegExp(`(?:^|[^\\w.~-])${MACHINE.replace(/\//g, '\\/')}`, 'm');

/** What is wrong with one tracked file, as `path:line: why` lines (empty when nothing is). */
export function offences(path: string, text: string): string[] {
  const out: string[] = [];
  const lineOf = (index: number) => text.slice(0, index).split('\n').length;
  const add = (index: number, why: string) => out.push(`${path}:${lineOf(index)}: ${why}`);
  for (let i = text.indexOf(SHARED); i >= 0; i = text.indexOf(SHARED, i + 1)) add(i, `names ${SHARED}`);
  if (!imagePathData.some((d) => path.startsWith(d))) {
    const m = machinePath.exec(text);
    if (m) add(m.index, `names an absolute path of a machine (${MACHINE}...)`);
  }
  const limit = depth(path);
  for (const m of text.matchAll(upRun)) {
    const up = m[0].split(DOTDOT).length - 1;
    if (up > limit) add(m.index, `climbs ${up} folders from a file ${limit} below the repository root`);
  }
  for (const m of text.matchAll(shellUp)) {
    const up = m[1].split(DOTDOT).length - 1;
    if (up > limit) add(m.index, `climbs ${up} folders from a script ${limit} below the repository root`);
  }
  const r = fromRoot.exec(text);
  if (r) add(r.index, 'climbs above the repository root');
  return out;
}

const q = (s: string) => `'${s}'`;
const up = (n: number) => Array(n).fill(q(DOTDOT)).join(', ');
const samples: { name: string; path: string; text: string; bad: boolean }[] = [
  {
    name: 'a folder beside the clone',
    bad: true,
    path: 'test/a.test.ts',
    text: `const d = join(here, ${q(`${DOTDOT}/${DOTDOT}/${SHARED}`)});`,
  },
  { name: 'the same, in prose', bad: true, path: 'packages/p/README.md', text: `data from <repo>/${SHARED}/x` },
  { name: 'the root, then up', bad: true, path: 'test/parse.test.ts', text: `join(repo, ${q(DOTDOT)}, 'shared', 'x')` },
  { name: 'too many ..', bad: true, path: 'packages/p/test/paths.ts', text: `join(here, ${up(5)})` },
  {
    name: 'too many .. in one string',
    bad: true,
    path: 'scripts/x.mjs',
    text: `new URL(${q('../../')}, import.meta.url)`,
  },
  {
    name: 'a script leaving the root',
    bad: true,
    path: 'scripts/x.sh',
    text: `cd "$(dirname "$0")/${DOTDOT}/${DOTDOT}"`,
  },
  { name: 'a machine path', bad: true, path: 'bench/run.mjs', text: `const src = '${MACHINE}main/x';` },
  { name: 'the compiled depth is allowed', bad: false, path: 'packages/p/test/h.ts', text: `join(here, ${up(4)})` },
  { name: 'up to the root from a script', bad: false, path: 'scripts/x.sh', text: `cd "$(dirname "$0")/${DOTDOT}"` },
  {
    name: 'hostile archive members are data',
    bad: false,
    path: 'packages/l/test/a.test.ts',
    text: `'a/b/c/../../../../victim'`,
  },
  {
    name: 'a folder named work inside the repo',
    bad: false,
    path: 'bench/README.md',
    text: 'contexts in bench/work/ctx',
  },
  {
    name: 'an image path in a parser fixture',
    bad: false,
    path: 'packages/parser/test/fixtures/m/Dockerfile',
    text: `WORKDIR ${MACHINE}lib`,
  },
];

for (const s of samples) {
  test(`the check itself: ${s.name} → ${s.bad ? 'offence' : 'fine'}`, () => {
    const found = offences(s.path, s.text);
    assert.is(found.length > 0, s.bad, found.join('\n') || 'no offence found');
  });
}

test('no tracked file outside docs/ reaches outside the repository', () => {
  const ls = spawnSync('git', ['ls-files', '-z'], { cwd: repo, encoding: 'utf8' });
  if (ls.status !== 0) return skip(`not a git checkout (git ls-files: ${ls.stderr.trim()})`);
  const files = ls.stdout.split('\0').filter((f) => f && !f.startsWith('docs/'));
  assert.ok(files.length > 100, `${files.length} tracked files`);
  const found: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(join(repo, f), 'utf8');
    } catch {
      continue; // deleted in the working tree but still in the index
    }
    if (text.includes('\0')) continue; // binary
    found.push(...offences(f, text));
  }
  assert.equal(found, []);
});

test.run();
