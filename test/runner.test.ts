// The test runner (scripts/run-tests.mjs) reports honestly: a crashed or hanging test file fails the run
// with its name, skips are counted apart from passes, uvu's totals are read without double counting,
// and it refuses to run tests from a missing or stale dist/.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
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
  placement(source: string): Placement;
  schedule<R>(files: Planned[], jobs: number, run: (f: Planned) => Promise<R>, stop?: () => boolean): Promise<R[]>;
}
interface Placement {
  alone: boolean;
  group?: string;
  long: boolean;
}
type Planned = Placement & { file: string };
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

const placements: { source: string; want: Placement | RegExp }[] = [
  { source: '// a test\nimport x;\n', want: { alone: false, group: undefined, long: false } },
  { source: '// test-runner: alone\n', want: { alone: true, group: undefined, long: false } },
  {
    source: '// x\n// test-runner: group users\n// test-runner: long\n',
    want: { alone: false, group: 'users', long: true },
  },
  {
    source: '  // test-runner: alone (indented: not a runner comment)\n',
    want: { alone: false, group: undefined, long: false },
  },
  { source: '// test-runner: alone-ish\n', want: /unknown runner comment/ },
  { source: '// test-runner: group\n', want: /unknown runner comment/ },
];
for (const [i, c] of placements.entries()) {
  test(`placement ${i}: ${JSON.stringify(c.source.split('\n')[0])}`, () => {
    if (c.want instanceof RegExp) assert.throws(() => runner.placement(c.source), c.want);
    else assert.equal(runner.placement(c.source), c.want);
  });
}

// The scheduler's promises, on files that take given times: never more than `jobs` at once, an alone
// file with nothing beside it, two of a group never together, the long ones started first, every file run.
const plans: { name: string; jobs: number; files: (Partial<Planned> & { file: string; ms: number })[] }[] = [
  { name: 'two at a time', jobs: 2, files: ['a', 'b', 'c', 'd', 'e'].map((file, i) => ({ file, ms: 5 + i * 3 })) },
  {
    name: 'alone in the middle',
    jobs: 2,
    files: [
      { file: 'a', ms: 30 },
      { file: 'b', ms: 5 },
      { file: 'alone', ms: 10, alone: true },
      { file: 'c', ms: 5 },
      { file: 'd', ms: 5 },
    ],
  },
  {
    name: 'a group of three, one other',
    jobs: 2,
    files: [
      { file: 'u1', ms: 10, group: 'users' },
      { file: 'u2', ms: 10, group: 'users' },
      { file: 'u3', ms: 10, group: 'users' },
      { file: 'x', ms: 5 },
    ],
  },
  {
    name: 'long ones first',
    jobs: 2,
    files: [
      { file: 'a', ms: 5 },
      { file: 'b', ms: 5 },
      { file: 'slow', ms: 20, long: true },
    ],
  },
  { name: 'one at a time', jobs: 1, files: ['a', 'b', 'c'].map((file) => ({ file, ms: 3 })) },
];
for (const p of plans) {
  test(`schedule: ${p.name}`, async () => {
    const files: Planned[] = p.files.map((f) => ({ alone: false, group: undefined, long: false, ...f }));
    const ms = new Map(p.files.map((f) => [f.file, f.ms]));
    const running = new Set<Planned>();
    const started: string[] = [];
    const wrong: string[] = []; // checked after the run: a throw inside run() would never reach uvu
    const ran = await runner.schedule(files, p.jobs, async (f) => {
      if (running.size >= p.jobs) wrong.push(`${f.file} started beside ${[...running].map((r) => r.file)}`);
      for (const r of running) {
        if (f.alone || r.alone) wrong.push(`${f.file} beside ${r.file}, and one of them is alone`);
        if (f.group && f.group === r.group) wrong.push(`${f.file} beside ${r.file}, both of group ${f.group}`);
      }
      running.add(f);
      started.push(f.file);
      await new Promise((r) => setTimeout(r, ms.get(f.file)));
      running.delete(f);
      return f.file;
    });
    assert.equal(wrong, []);
    assert.equal([...ran].sort(), files.map((f) => f.file).sort(), 'every file ran once');
    const longs = files.filter((f) => f.long).map((f) => f.file);
    assert.equal(started.slice(0, longs.length), longs, `the long ones first: ${started}`);
  });
}

test('schedule: once told to stop, it starts nothing more and waits for those running', async () => {
  let stop = false;
  const files: Planned[] = ['a', 'b', 'c', 'd'].map((file) => ({ file, alone: false, group: undefined, long: false }));
  const ran = await runner.schedule(
    files,
    2,
    async (f) => {
      await new Promise((r) => setTimeout(r, 5));
      stop = true; // when the first file ends (a and b were started together)
      return f.file;
    },
    () => stop,
  );
  assert.equal(ran.sort(), ['a', 'b']);
});

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
  // Durations differ from run to run: "(exit N, 1.2 s)" is compared as "(exit N, S)".
  const lines = out.split('\n').map((l) => l.replace(/^(--- .*\(exit \d+), \d+\.\d s\)/, '$1, S)'));
  assert.is(r.status, 1, out);
  assert.is(out.trimEnd().split('\n').pop(), '3 passed, 3 failed, 1 skipped');
  const dir = 'test/fixtures/runner';
  const crashed = (code: number) => `!!! crashed before its totals (exit ${code})`;
  for (const line of [
    `--- ${dir}/crash-at-load.test.js: 0 passed, 1 failed, 0 skipped (exit 1, S) ${crashed(1)}`,
    `--- ${dir}/crash-mid-run.test.js: 1 passed, 1 failed, 0 skipped (exit 3, S) ${crashed(3)}`,
    `--- ${dir}/hang.test.js: 1 passed, 1 failed, 0 skipped (exit 137, S) !!! timed out`,
    `--- ${dir}/pass.test.js: 1 passed, 0 failed, 1 skipped (exit 0, S)`,
    `  ${dir}/hang.test.js: timed out`,
    `  ${dir}/pass.test.js: fixture: nothing to check here`,
    'test files found: 4',
    'ran 4 of 4 test files',
  ])
    assert.ok(lines.includes(line), `no line "${line}" in:\n${out}`);
  // Two files run at a time, and each file's output is printed whole: between a file's === and its ---
  // there is no other file's line.
  assert.ok(out.includes('2 at a time'), out);
  for (const f of ['crash-at-load', 'crash-mid-run', 'hang', 'pass']) {
    const from = lines.indexOf(`=== ${dir}/${f}.test.js`);
    const to = lines.findIndex((l) => l.startsWith(`--- ${dir}/${f}.test.js:`));
    assert.ok(from >= 0 && to > from, `${f}: === at ${from}, --- at ${to}`);
    assert.not.ok(
      lines.slice(from + 1, to).some((l) => /^(===|---) /.test(l)),
      `${f}'s output is interleaved:\n${out}`,
    );
  }
  // The `sleep` the hanging file started in its group went with it.
  const sleeper = Number(readFileSync(pids, 'utf8').trim());
  assert.ok(sleeper > 0, 'the hanging fixture started its sleep');
  assert.throws(() => process.kill(sleeper, 0), /ESRCH/);
});

test("a process that left the file's process group and holds its output does not keep the runner waiting", () => {
  const pids = join(tmp, 'escape-pids');
  writeFileSync(pids, '');
  // setsid: the sleep leads a session of its own. spawnSync's timeout is a hang stop only (the sleep lasts 600 s).
  const r = spawnSync(process.execPath, [join(repo, 'scripts', 'run-tests.mjs')], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 300_000,
    killSignal: 'SIGKILL',
    env: { ...process.env, TSBUILD_TEST_DIRS: 'test/fixtures/runner-escape', RUNNER_FIXTURE_PIDS: pids },
  });
  const sleeper = Number(readFileSync(pids, 'utf8').trim());
  const alive = sleeper > 0 && existsSync(`/proc/${sleeper}`);
  try {
    if (sleeper > 0) process.kill(sleeper, 'SIGKILL');
  } catch {
    /* gone */
  }
  assert.is(r.signal, null, `the runner was still waiting when stopped:\n${r.stdout}`);
  assert.ok(alive, 'the sleep outlived the runner (so the runner did not wait for it)');
  // The file passed; the sleep it left running is the host guard's failure, named.
  assert.ok(r.stdout.includes('escape.test.js: 1 passed, 0 failed, 0 skipped'), r.stdout);
  assert.match(r.stdout, /host guard: FAILED[^]*sleep/);
  assert.is(r.stdout.trimEnd().split('\n').pop(), '1 passed, 1 failed, 0 skipped', r.stdout);
});

test.run();
