// The test runner (scripts/run-tests.mjs) reports honestly: a crashed or hanging test file fails the run
// with its name, skips are counted apart from passes, uvu's totals are read without double counting,
// and it refuses to run tests from a missing or stale dist/.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repo } from './helpers/cli.js';

interface Counts {
  passed: number;
  failed: number;
  skips: string[];
  problem?: string;
}
interface Runner {
  summarize(output: string, code: number, opts?: { timedOut?: boolean }): Counts;
  discover(base: string, env: Record<string, string | undefined>): { dirs: string[]; problems: string[] };
  staleness(base: string): string[];
}
const runner = (await import(pathToFileURL(join(repo, 'scripts', 'run-tests.mjs')).href)) as Runner;

// uvu 0.5.6 output, as it prints it with colours (the runner runs it with FORCE_COLOR).
const dot = '\x1b[90m• \x1b[39m',
  cross = '\x1b[31m✘ \x1b[39m';
const totals = (total: number, passed: number, skipped: number) =>
  `\n  Total:     ${total}\x1b[32m\n  Passed:    ${passed}\x1b[39m\n  Skipped:   ` +
  `${skipped ? `\x1b[33m${skipped}\x1b[39m` : 0}\n  Duration:  1.00ms\n\n`;

const cases: { name: string; out: string; code: number; timedOut?: boolean; want: Counts }[] = [
  {
    name: 'all passed',
    out: `${dot.repeat(5)}  (5 / 5)\n${totals(5, 5, 0)}`,
    code: 0,
    want: { passed: 5, failed: 0, skips: [] },
  },
  {
    name: 'failures: Total − Passed, uvu skips not subtracted again',
    out: `${dot.repeat(3)}${cross.repeat(2)}  (3 / 5)\n${totals(5, 3, 1)}`,
    code: 1,
    want: { passed: 3, failed: 2, skips: ['not run (uvu .skip or .only)'] },
  },
  {
    name: '.only: the rest is skipped, nothing failed',
    out: `${dot}  (1 / 1)\n${totals(1, 1, 2)}`,
    code: 0,
    want: { passed: 1, failed: 0, skips: ['not run (uvu .skip or .only)', 'not run (uvu .skip or .only)'] },
  },
  {
    name: 'testkit skip() markers (after a progress mark) are skips, not passes',
    out: `${dot}TSBUILD-SKIP: no skopeo\n${dot}${dot}  (3 / 3)\n${totals(3, 3, 0)}`,
    code: 0,
    want: { passed: 2, failed: 0, skips: ['no skopeo'] },
  },
  {
    name: 'crash before the totals: the marks seen, plus one failure',
    out: `${dot}${dot}${cross}`,
    code: 1,
    want: { passed: 2, failed: 2, skips: [], problem: 'crashed before its totals (exit 1)' },
  },
  {
    name: 'crash while loading: one failure',
    out: '',
    code: 1,
    want: { passed: 0, failed: 1, skips: [], problem: 'crashed before its totals (exit 1)' },
  },
  {
    name: 'timed out after printing totals of an earlier suite still fails',
    out: `${dot}  (1 / 1)\n`,
    code: 137,
    timedOut: true,
    want: { passed: 1, failed: 1, skips: [], problem: 'timed out' },
  },
  {
    name: 'a file that ran no test fails',
    out: totals(0, 0, 0),
    code: 0,
    want: { passed: 0, failed: 1, skips: [], problem: 'ran no test' },
  },
  {
    name: 'non-zero exit with no failed test fails',
    out: `${dot}  (1 / 1)\n${totals(1, 1, 0)}`,
    code: 1,
    want: { passed: 1, failed: 1, skips: [], problem: 'exit 1 though no test failed' },
  },
  {
    name: 'a test printing a fake summary does not fool it',
    out: `  Total:     9\n${cross}  (0 / 1)\n${totals(1, 0, 0)}`,
    code: 1,
    want: { passed: 0, failed: 1, skips: [] },
  },
];

for (const c of cases) {
  test(`summarize: ${c.name}`, () => {
    const got = runner.summarize(c.out, c.code, { timedOut: c.timedOut });
    assert.equal({ ...got, problem: got.problem }, { ...c.want, problem: c.want.problem });
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'tsbuild-runner-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** A tree of files under a fresh folder: path → content. */
function tree(name: string, files: Record<string, string>): string {
  const base = join(tmp, name);
  for (const [path, body] of Object.entries(files)) {
    mkdirSync(dirname(join(base, path)), { recursive: true });
    writeFileSync(join(base, path), body);
  }
  return base;
}
const at = (base: string, path: string, seconds: number) => utimesSync(join(base, path), seconds, seconds);

const layouts: { name: string; files: Record<string, string>; dirs: string[]; problems: RegExp[] }[] = [
  {
    name: 'built',
    files: {
      'packages/p/test/a.test.ts': '',
      'packages/p/dist/test/a.test.js': '',
      'test/e.test.ts': '',
      'test/dist/e.test.js': '',
    },
    dirs: ['packages/p/dist/test', 'test/dist'],
    problems: [],
  },
  {
    name: 'dist/test missing',
    files: { 'packages/p/test/a.test.ts': '', 'packages/q/src/x.ts': '' },
    dirs: [],
    problems: [/^packages\/p\/test has 1 test files but packages\/p\/dist\/test is missing/],
  },
  {
    name: 'a test not compiled',
    files: { 'packages/p/test/a.test.ts': '', 'packages/p/test/b.test.ts': '', 'packages/p/dist/test/a.test.js': '' },
    dirs: ['packages/p/dist/test'],
    problems: [/^packages\/p\/test\/b\.test\.ts is not compiled/],
  },
  {
    name: 'a compiled test whose source is gone',
    files: {
      'packages/p/test/a.test.ts': '',
      'packages/p/dist/test/a.test.js': '',
      'packages/p/dist/test/old.test.js': '',
    },
    dirs: ['packages/p/dist/test'],
    problems: [/^packages\/p\/dist\/test\/old\.test\.js has no source any more/],
  },
];

for (const l of layouts) {
  test(`discover: ${l.name}`, () => {
    const base = tree(`discover-${l.name.replace(/\W+/g, '-')}`, l.files);
    const { dirs, problems } = runner.discover(base, {});
    assert.equal(dirs, l.dirs);
    assert.is(problems.length, l.problems.length, problems.join('\n'));
    l.problems.forEach((re, i) => assert.match(problems[i], re));
  });
}

test('discover: TSBUILD_TEST_DIRS replaces discovery, and a missing folder is a problem', () => {
  const base = tree('discover-env', { 'x/a.test.js': '' });
  const got = runner.discover(base, { TSBUILD_TEST_DIRS: 'x:y' });
  assert.equal(got, { dirs: ['x', 'y'], problems: ['y: no such folder'] });
});

// mtimes in seconds: sources at 1000, builds at 2000 unless a case says otherwise.
const staleCases: { name: string; touch: [string, number][]; problems: RegExp[] }[] = [
  { name: 'everything built after its sources', touch: [], problems: [] },
  {
    name: 'a source changed after the build',
    touch: [['packages/p/src/a.ts', 3000]],
    problems: [/^packages\/p: sources changed since the last build/],
  },
  {
    name: 'a test source changed after the build',
    touch: [['test/e.test.ts', 3000]],
    problems: [/^test: sources changed since the last build/],
  },
  {
    name: 'the bundle older than a bundled package',
    touch: [['packages/builder/dist/tsbuild.cjs', 1500]],
    problems: [/^packages\/builder\/dist\/tsbuild\.cjs is older than the code it bundles/],
  },
  {
    name: 'a C source changed after the native build',
    touch: [['packages/p/native/x.c', 3000]],
    problems: [/^packages\/p\/native is not built since its C sources changed/],
  },
];

for (const c of staleCases) {
  test(`staleness: ${c.name}`, () => {
    const sources = [
      'packages/p/tsconfig.json',
      'packages/p/src/a.ts',
      'packages/p/native/x.c',
      'test/tsconfig.json',
      'test/e.test.ts',
      'packages/builder/tsconfig.json',
      'packages/builder/src/b.ts',
      'packages/builder/scripts/bundle.mjs',
    ];
    const outputs = [
      'packages/p/dist/tsconfig.tsbuildinfo',
      'packages/p/native/build/x',
      'test/dist/tsconfig.tsbuildinfo',
      'packages/builder/dist/tsconfig.tsbuildinfo',
      'packages/builder/dist/tsbuild.cjs',
    ];
    const files = Object.fromEntries([...sources, ...outputs].map((f) => [f, '']));
    const base = tree(`stale-${c.name.replace(/\W+/g, '-')}`, files);
    for (const f of sources) at(base, f, 1000);
    for (const f of outputs) at(base, f, 2000);
    for (const [f, t] of c.touch) at(base, f, t);
    const problems = runner.staleness(base);
    assert.is(problems.length, c.problems.length, problems.join('\n'));
    c.problems.forEach((re, i) => assert.match(problems[i], re));
  });
}

test("a crashed and a hanging test file both fail the run, by name; the hanging one's process group is killed", () => {
  const pids = join(tmp, 'pids');
  writeFileSync(pids, '');
  const r = spawnSync(process.execPath, [join(repo, 'scripts', 'run-tests.mjs')], {
    cwd: repo,
    encoding: 'utf8',
    env: {
      ...process.env,
      TSBUILD_TEST_DIRS: 'test/fixtures/runner',
      TSBUILD_TEST_TIMEOUT: '2',
      RUNNER_FIXTURE_PIDS: pids,
    },
  });
  const out = r.stdout.replace(/\x1b\[[0-9;]*m/g, '');
  assert.is(r.status, 1, out);
  assert.is(out.trimEnd().split('\n').pop(), '3 passed, 3 failed, 1 skipped');
  const dir = 'test/fixtures/runner';
  for (const line of [
    `--- ${dir}/crash-at-load.test.js: 0 passed, 1 failed, 0 skipped (exit 1) !!! crashed before its totals (exit 1)`,
    `--- ${dir}/crash-mid-run.test.js: 1 passed, 1 failed, 0 skipped (exit 3) !!! crashed before its totals (exit 3)`,
    `--- ${dir}/hang.test.js: 1 passed, 1 failed, 0 skipped (exit 137) !!! timed out`,
    `--- ${dir}/pass.test.js: 1 passed, 0 failed, 1 skipped (exit 0)`,
    `  ${dir}/hang.test.js: timed out`,
    `  ${dir}/pass.test.js: fixture: nothing to check here`,
    'test files found: 4',
    'ran 4 of 4 test files',
  ])
    assert.ok(out.split('\n').includes(line), `no line "${line}" in:\n${out}`);
  // The `sleep` the hanging file started in its group went with it.
  const sleeper = Number(readFileSync(pids, 'utf8').trim());
  assert.ok(sleeper > 0, 'the hanging fixture started its sleep');
  assert.throws(() => process.kill(sleeper, 0), /ESRCH/);
});

test.run();
