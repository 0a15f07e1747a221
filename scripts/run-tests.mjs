#!/usr/bin/env node
// Runs every test file with uvu, one process (and process group) per file, so that a crash or a hang
// in one cannot hide the others, and prints the summed totals. The last line is always
// `N passed, M failed, K skipped`; the exit status is non-zero when anything failed or nothing ran.
//
// Files run two at a time (much of a file's time is spent waiting on a sandbox, a registry or a
// daemon, so two share two cores well); each file's output is printed whole when it ends. A file that
// must not share the machine says so in a comment line of its own (kept in the compiled file):
//   // test-runner: alone        nothing else runs meanwhile (it compares machine-wide state)
//   // test-runner: group NAME   never beside another file of group NAME (they share something fixed)
//   // test-runner: long         started before the others, so that it does not end the run alone
//
//   node scripts/run-tests.mjs [FILTER...]     files whose path contains any FILTER (default: all)
//
// Tests run from the compiled dist/ folders: the runner refuses a dist older than its sources
// (`pnpm test` builds first). Environment:
//   TSBUILD_TEST_TIMEOUT=SECONDS   per-file limit (default 600): the file's process group is killed
//                                  and the file fails
//   TSBUILD_TEST_JOBS=N            files at a time (default 2); with 1, each file's output is shown live
//   TSBUILD_TEST_NO_LINT=1         leave out the lint step a whole run starts with (scripts/lint.mjs)
//   TSBUILD_TEST_DIRS=a:b          run the *.test.js files of these folders (repository-relative)
//                                  instead of the discovered suites; no build check (used by the
//                                  runner's own test)
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import * as hostGuard from './host-guard.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const uvu = join(root, 'node_modules', 'uvu', 'bin.js');
const SKIP_MARKER = 'TSBUILD-SKIP:'; // packages/testkit/src/skip.ts
const KILL_GRACE_MS = 5000;
const SETTLE_MS = 2000;

const listTests = (dir) =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => /\.test\.[jt]s$/.test(f))
        .sort()
    : [];

/**
 * The test folders to run and what is wrong with them. A package (or the end-to-end suite) whose
 * sources hold tests must have them compiled: a missing dist folder, or a compiled test without its
 * source (deleted since the last build) or the other way round, is a problem, never silently dropped.
 */
export function discover(base = root, env = process.env) {
  if (env.TSBUILD_TEST_DIRS) {
    const dirs = env.TSBUILD_TEST_DIRS.split(':').filter(Boolean);
    return { dirs, problems: dirs.filter((d) => !existsSync(join(base, d))).map((d) => `${d}: no such folder`) };
  }
  const projects = [
    ...readdirSync(join(base, 'packages'))
      .sort()
      .map((p) => ({ src: join('packages', p, 'test'), dist: join('packages', p, 'dist', 'test') })),
    { src: 'test', dist: join('test', 'dist') },
  ];
  const dirs = [];
  const problems = [];
  for (const { src, dist } of projects) {
    const sources = listTests(join(base, src))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => f.replace(/\.ts$/, '.js'));
    const compiled = listTests(join(base, dist)).filter((f) => f.endsWith('.js'));
    if (sources.length === 0 && compiled.length === 0) continue;
    if (!existsSync(join(base, dist))) {
      problems.push(`${src} has ${sources.length} test files but ${dist} is missing (run pnpm run build)`);
      continue;
    }
    for (const f of sources.filter((f) => !compiled.includes(f))) {
      problems.push(`${join(src, f.replace(/\.js$/, '.ts'))} is not compiled (run pnpm run build)`);
    }
    for (const f of compiled.filter((f) => !sources.includes(f))) {
      problems.push(`${join(dist, f)} has no source any more (stale: rebuild, or remove that dist folder)`);
    }
    dirs.push(dist);
  }
  return { dirs, problems };
}

/** Newest mtime (ms) of the files below dir whose name passes keep; 0 when there are none. */
function newest(dir, keep) {
  let t = 0;
  if (!existsSync(dir)) return t;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'dist' || e.name === 'node_modules') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, keep));
    else if (keep(e.name)) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

/**
 * What in the compiled tree is older than its sources: tests run from dist/, so a change not built
 * yet would be tested as it was. tsc -b stamps a project's tsbuildinfo whenever it has looked at
 * changed inputs (even when it re-emits nothing), so "a source newer than the tsbuildinfo" means
 * "not built since". The CLI bundle must be newer than every project it bundles, and each native
 * helper newer than its C sources.
 */
export function staleness(base = root) {
  const problems = [];
  const isTs = (n) => n.endsWith('.ts') && !n.endsWith('.d.ts');
  const projects = [
    ...readdirSync(join(base, 'packages'))
      .sort()
      .map((p) => join('packages', p)),
    'test',
  ];
  const built = {};
  for (const p of projects) {
    if (!existsSync(join(base, p, 'tsconfig.json'))) continue;
    const info = join(base, p, 'dist', 'tsconfig.tsbuildinfo');
    built[p] = mtime(info);
    const dirs = p === 'test' ? [p] : [join(p, 'src'), join(p, 'test')];
    const src = Math.max(...dirs.map((d) => newest(join(base, d), isTs)));
    if (!built[p]) problems.push(`${p} is not built (run pnpm run build)`);
    else if (src > built[p]) problems.push(`${p}: sources changed since the last build (run pnpm run build)`);
  }
  const bundle = join(base, 'packages', 'builder', 'dist', 'tsbuild.cjs');
  if (existsSync(join(base, 'packages', 'builder', 'scripts', 'bundle.mjs'))) {
    const inputs = ['sys', 'parser', 'layerstore', 'sandbox', 'containers', 'builder'].map(
      (p) => built[join('packages', p)] ?? 0,
    );
    if (mtime(bundle) < Math.max(...inputs)) {
      problems.push('packages/builder/dist/tsbuild.cjs is older than the code it bundles (run pnpm run build)');
    }
  }
  for (const p of projects) {
    const native = join(base, p, 'native');
    const sources = newest(native, (n) => /\.[ch]$/.test(n));
    if (!sources) continue;
    const out = join(native, 'build');
    const outs = existsSync(out) ? readdirSync(out).map((f) => mtime(join(out, f))) : [];
    if (outs.length === 0 || Math.min(...outs) < sources) {
      problems.push(`${p}/native is not built since its C sources changed (run pnpm run build)`);
    }
  }
  return problems;
}

const plain = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

/**
 * One file's counts from uvu 0.5.6's output and exit status. uvu's `Total` counts the tests it ran
 * (those left out by .skip/.only are its `Skipped`, not part of Total), so failed = Total − Passed.
 * A test that called testkit's skip() passed in uvu's eyes: it counts as a skip, with its reason.
 * Without the totals the file crashed (or was killed): what its progress marks show is counted,
 * plus one failure for the crash itself, so a crash can never look like a pass.
 */
export function summarize(output, code, { timedOut = false } = {}) {
  const out = plain(output);
  const skips = [...out.matchAll(new RegExp(`${SKIP_MARKER} (.*)$`, 'gm'))].map((m) => m[1].trim());
  // The last such line is uvu's summary (a test could print one of its own before it).
  const num = (label) => Number([...out.matchAll(new RegExp(`^\\s*${label}:\\s+(\\d+)\\s*$`, 'gm'))].pop()?.[1] ?? NaN);
  const total = num('Total'),
    passed = num('Passed'),
    notRun = num('Skipped');
  if (timedOut || Number.isNaN(total) || Number.isNaN(passed)) {
    // uvu writes '• ' for a passed test and '✘ ' for a failed one as each ends.
    const dots = (out.match(/• /g) ?? []).length,
      crosses = (out.match(/✘ /g) ?? []).length;
    const why = timedOut ? 'timed out' : `crashed before its totals (exit ${code})`;
    return { passed: Math.max(0, dots - skips.length), failed: crosses + 1, skips, problem: why };
  }
  const result = { passed: passed - skips.length, failed: total - passed, skips: [...skips], problem: undefined };
  for (let i = 0; i < (Number.isNaN(notRun) ? 0 : notRun); i++) result.skips.push('not run (uvu .skip or .only)');
  if (total === 0) return { ...result, failed: 1, problem: 'ran no test' };
  if (code !== 0 && result.failed === 0) return { ...result, failed: 1, problem: `exit ${code} though no test failed` };
  return result;
}

const running = new Set(); // the running files' children, for the signal handlers
let interrupted = false;

/** Sends signal to the child's process group; false when the group has no process left. */
function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** `pid name` of each process in a process group, from /proc (empty where /proc is not Linux's). */
function members(pgid) {
  const out = [];
  for (const pid of existsSync('/proc') ? readdirSync('/proc').filter((d) => /^\d+$/.test(d)) : []) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // state ppid pgrp ...
      if (Number(fields[2]) === pgid) out.push(`${pid} ${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * After the file's own process ended: what it started in its group and left running (a server, a
 * daemon) is stopped, SIGTERM first, SIGKILL after a grace period, so it cannot outlive the file.
 */
async function reap(child, file) {
  // Children that die with their parent (PDEATHSIG) may still be tearing down: give them a moment.
  for (let waited = 0; waited < SETTLE_MS && killGroup(child, 0); waited += 50) await sleep(50);
  if (!killGroup(child, 0)) return undefined;
  const left = members(child.pid).join(', ') || 'none listed';
  killGroup(child, 'SIGTERM');
  for (let waited = 0; waited < KILL_GRACE_MS && killGroup(child, 0); waited += 100) await sleep(100);
  killGroup(child, 'SIGKILL');
  return `!!! ${file}: left processes running in its group (${left}); stopped them\n`;
}

/** Runs one compiled test file in a process group of its own, with a time limit. */
export function runFile(file, { timeoutMs, cwd = root, echo = true } = {}) {
  const started = Date.now();
  return new Promise((resolve) => {
    const name = file
      .split('/')
      .pop()
      .replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const child = spawn(process.execPath, [uvu, dirname(file), `^${name}$`], {
      cwd,
      stdio: ['ignore', 'pipe', echo ? 'inherit' : 'pipe'],
      detached: true,
    });
    running.add(child);
    let out = ''; // stdout, which holds uvu's counts
    let shown = ''; // stdout and stderr in the order they came, printed when the file ends (echo off)
    let timedOut = false;
    child.stdout.on('data', (b) => {
      out += b;
      if (echo) process.stdout.write(b);
      else shown += b;
    });
    child.stderr?.on('data', (b) => (shown += b));
    const timer = setTimeout(() => {
      timedOut = true;
      const say = `\n!!! ${file}: no result after ${timeoutMs / 1000} s, killing its process group\n`;
      if (echo) process.stdout.write(say);
      else shown += say;
      killGroup(child, 'SIGTERM');
      setTimeout(() => killGroup(child, 'SIGKILL'), KILL_GRACE_MS).unref();
    }, timeoutMs);
    child.on('exit', async (code, signal) => {
      clearTimeout(timer);
      const left = await reap(child, file);
      if (left) {
        if (echo) process.stdout.write(left);
        else shown += left;
      }
      running.delete(child);
      const status = code ?? 128 + (constants.signals[signal] ?? 0);
      const counts = () => summarize(out, status, { timedOut });
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        resolve({
          file,
          code: status,
          signal,
          ...counts(),
          output: echo ? undefined : shown,
          tail: (echo ? out : shown).at(-1),
          seconds: (Date.now() - started) / 1000,
        });
      };
      // A process that outlived the file (one that left its process group, which reap() cannot reach) may still
      // hold its stdout or stderr open: read what is there for a moment, then let go of both pipes, so that the
      // runner neither loses a crash's last words nor waits for such a process after its last line.
      const pipes = [child.stdout, child.stderr].filter((p) => p && !p.readableEnded && !p.destroyed);
      if (pipes.length === 0) return finish();
      let open = pipes.length;
      const t = setTimeout(() => {
        for (const p of pipes) p.destroy();
        finish();
      }, 2000);
      for (const p of pipes)
        p.once('close', () => {
          if (--open > 0) return;
          clearTimeout(t);
          finish();
        });
    });
  });
}

function onSignal(sig) {
  interrupted = true;
  for (const child of running) killGroup(child, sig === 'SIGINT' ? 'SIGTERM' : sig);
}

/** What a compiled test file asks of the runner (see the head of this file): { alone, group, long }. */
export function placement(source) {
  const want = { alone: false, group: undefined, long: false };
  for (const m of source.matchAll(/^\/\/ test-runner: (.*)$/gm)) {
    const [word, arg] = m[1].trim().split(/\s+/);
    if (word === 'alone') want.alone = true;
    else if (word === 'long') want.long = true;
    else if (word === 'group' && arg) want.group = arg;
    else throw new Error(`unknown runner comment "${m[0]}" (alone, group NAME, long)`);
  }
  return want;
}

/**
 * Runs `files` (each { file, alone, group, long }) `jobs` at a time: the long ones first, then in order.
 * A file starts only when it may run beside those running: none of them is alone, it is not alone
 * itself unless nothing runs, and none shares its group. `run(file)` resolves with its result;
 * `stop()` says whether to start no more. Returns the results in the order the files ended.
 */
export async function schedule(files, jobs, run, stop = () => false) {
  const waiting = [...files.filter((f) => f.long), ...files.filter((f) => !f.long)];
  const active = new Set();
  const results = [];
  const fits = (f) =>
    active.size < jobs &&
    (active.size === 0 || (!f.alone && ![...active].some((a) => a.alone || (f.group && a.group === f.group))));
  await new Promise((resolve) => {
    const next = () => {
      while (!stop()) {
        const i = waiting.findIndex(fits);
        // Something alone waits for the others to end; nothing overtakes it meanwhile.
        const firstAlone = waiting.findIndex((f) => f.alone);
        if (i < 0 || (firstAlone >= 0 && firstAlone < i)) break;
        const [f] = waiting.splice(i, 1);
        active.add(f);
        void run(f).then((r) => {
          active.delete(f);
          results.push(r);
          next();
        });
      }
      if (active.size === 0) resolve();
    };
    next();
  });
  return results;
}

/** scripts/lint.mjs in a child of its own, its output (stdout and stderr, in order) kept for the end. */
function startLint() {
  const child = spawn(process.execPath, [join(root, 'scripts', 'lint.mjs')], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  const chunks = [];
  child.stdout.on('data', (b) => chunks.push(b));
  child.stderr.on('data', (b) => chunks.push(b));
  const done = new Promise((resolve) => {
    child.on('error', (e) => resolve({ code: 127, output: `cannot start lint: ${e.message}\n` }));
    child.on('close', (c, sig) =>
      resolve({ code: c ?? 128 + (constants.signals[sig] ?? 0), output: Buffer.concat(chunks).toString() }),
    );
  });
  return { child, done };
}

function jobCount(env = process.env) {
  const n = env.TSBUILD_TEST_JOBS === undefined ? 2 : Number(env.TSBUILD_TEST_JOBS);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`TSBUILD_TEST_JOBS="${env.TSBUILD_TEST_JOBS}" is not a whole number > 0`);
  return n;
}

function timeoutMs(env = process.env) {
  const s = env.TSBUILD_TEST_TIMEOUT === undefined ? 600 : Number(env.TSBUILD_TEST_TIMEOUT);
  if (!(s > 0)) throw new Error(`TSBUILD_TEST_TIMEOUT="${env.TSBUILD_TEST_TIMEOUT}" is not a number of seconds > 0`);
  return s * 1000;
}

export async function main(argv = process.argv.slice(2), env = process.env) {
  // Phase 1: what to run. A problem here fails the run before any test starts.
  const limit = timeoutMs(env);
  const jobs = jobCount(env);
  const { dirs, problems } = discover(root, env);
  if (!env.TSBUILD_TEST_DIRS) problems.push(...staleness(root));
  const compiled = (dir) => listTests(join(root, dir)).filter((f) => f.endsWith('.js'));
  const found = dirs.flatMap((dir) => compiled(dir).map((f) => join(dir, f)));
  const selected = found.filter((file) => argv.length === 0 || argv.some((o) => file.includes(o)));
  console.log(`test files found: ${found.length}`);
  for (const dir of dirs)
    console.log(
      `  ${dir}: ${compiled(dir)
        .map((f) => f.replace(/\.test\.js$/, ''))
        .join(' ')}`,
    );
  const matching = argv.length ? ` (matching ${argv.join(', ')})` : '';
  console.log(`running ${selected.length}${matching}, ${jobs} at a time, at most ${limit / 1000} s each`);
  // What each file asks of the scheduler; a runner comment it does not know is a problem like a stale dist.
  const plan = [];
  for (const file of selected) {
    try {
      plan.push({ file, ...placement(readFileSync(join(root, file), 'utf8')) });
    } catch (e) {
      problems.push(`${file}: ${e.message}`);
    }
  }
  if (problems.length) {
    console.log(`\ncannot run the tests:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    console.log('0 passed, 1 failed, 0 skipped');
    return 1;
  }

  // Host guard (scripts/host-guard.mjs): every test process gets this run's TMPDIR and tag; what the
  // suite leaves on or takes from the host (interfaces, mounts, cgroups, processes) fails the run.
  const guardRun = hostGuard.prepare();
  Object.assign(process.env, guardRun.env);
  const guardBefore = hostGuard.snapshot(guardRun);

  // Phase 2: each file in its own process group.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const results = [];
  // The whole suite has `pnpm run lint` (format, eslint, import cycles) as one result, counted like a test, so
  // a lint failure fails the run; a filtered run (FILTER...) leaves it out. It runs beside the test files, not
  // before them (34 s of a run that must stay under 15 min): it reads only tracked sources, which no test
  // writes (tests work in temp directories; what they leave in the tree, fixtures' rootfs tars and native
  // builds, is outside lint's files), and it changes nothing the host guard compares. Its output is printed
  // whole once it is done, after the test files, so that it does not interleave with theirs.
  const lint = argv.length === 0 && !env.TSBUILD_TEST_DIRS && env.TSBUILD_TEST_NO_LINT !== '1';
  const linting = lint ? startLint() : undefined;
  const echo = jobs === 1;
  const ended = await schedule(
    plan,
    jobs,
    async ({ file }) => {
      if (echo) console.log(`\n=== ${file}`);
      const r = await runFile(file, { timeoutMs: limit, echo });
      if (!echo) process.stdout.write(`\n=== ${file}\n${r.output}`);
      const counts = `${r.passed} passed, ${r.failed} failed, ${r.skips.length} skipped`;
      if (r.tail !== undefined && r.tail !== '\n') console.log();
      const problem = r.problem ? ` !!! ${r.problem}` : '';
      console.log(`--- ${file}: ${counts} (exit ${r.code}, ${r.seconds.toFixed(1)} s)${problem}`);
      return r;
    },
    () => interrupted,
  );
  results.push(...ended);

  if (linting) {
    if (interrupted) linting.child.kill('SIGTERM');
    const { code, output } = await linting.done;
    console.log('\n=== lint (scripts/lint.mjs, run beside the test files)');
    process.stdout.write(output);
    const ok = code === 0;
    results.push({ file: 'lint', code, passed: ok ? 1 : 0, failed: ok ? 0 : 1, skips: [], problem: undefined });
    console.log(`--- lint: ${ok ? '1 passed, 0 failed' : '0 passed, 1 failed'}, 0 skipped (exit ${code})`);
  }

  const guard = hostGuard.compare(guardBefore, hostGuard.snapshot(guardRun));
  console.log(`\n${hostGuard.report(guard, guardBefore)}`);
  const kept = hostGuard.finish(guardRun);
  if (kept) console.log(`host guard: ${kept}`);

  // Phase 3: the report. The last line is the one CI reads.
  return report(results, selected.length, guard.problems.length > 0);
}

/** `hostChanged`: the host guard found something the suite left on or took from the machine (one failure). */
export function report(results, wanted, hostChanged = false) {
  const sum = (k) => results.reduce((n, r) => n + r[k], 0);
  const passed = sum('passed');
  const failed = sum('failed') + (interrupted ? 1 : 0) + (hostChanged ? 1 : 0);
  const skipped = results.flatMap((r) => r.skips.map((why) => `${r.file}: ${why}`));
  const broken = results.filter((r) => r.problem);
  if (skipped.length) console.log(`\nskipped:\n${skipped.map((s) => `  ${s}`).join('\n')}`);
  if (broken.length) {
    console.log(`\nfiles that did not finish cleanly:\n${broken.map((r) => `  ${r.file}: ${r.problem}`).join('\n')}`);
  }
  const files = results.filter((r) => r.file !== 'lint');
  const slowest = files
    .filter((r) => r.seconds !== undefined)
    .sort((a, b) => b.seconds - a.seconds)
    .slice(0, 5);
  if (slowest.length) console.log(`\nslowest: ${slowest.map((r) => `${r.file} ${r.seconds.toFixed(0)} s`).join(', ')}`);
  console.log(`\nran ${files.length} of ${wanted} test files${interrupted ? ' (interrupted)' : ''}`);
  console.log(`${passed} passed, ${failed} failed, ${skipped.length} skipped`);
  if (interrupted) return 130;
  return failed === 0 && results.length > 0 ? 0 : 1;
}

// Run as a script (not when a test imports it for summarize()).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = await main();
