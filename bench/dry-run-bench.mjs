#!/usr/bin/env node
// `tsbuild build --dry-run` against the no-op rebuild it stands in for, on the many-files workload
// (issue 19: a dry run of an unchanged context should cost about what a no-op build costs).
//
//   node bench/dry-run-bench.mjs [--quick] [--runs N]      (default 7 runs; --quick: 2,000 files, 3 runs)
//
// Benches the working tree as built (packages/builder/bin/tsbuild), in a store of its own under
// bench/work/dry-run. After one cold build (untimed), each run times a no-op build and a dry run of the
// same unchanged context, alternating which goes first; prints median [min–max] of each and the ratio
// of the medians, as a table row for RESULTS.md. Not called by run.mjs.
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureManyFiles } from './gen-data.mjs';
import { fmtS, max, median, min, sh } from './lib/util.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : quick ? 3 : 7;
if (!Number.isInteger(runs) || runs < 1) {
  console.error('usage: node bench/dry-run-bench.mjs [--quick] [--runs N]');
  process.exit(2);
}
const tsbuild = join(repo, 'packages', 'builder', 'bin', 'tsbuild');
const work = join(here, 'work', 'dry-run');
const store = join(work, 'store');
const ctx = join(work, 'ctx');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

const log = (m) => console.error(`[dry-run-bench] ${m}`);
const nm = ensureManyFiles(quick, log);
cpSync(join(here, 'workloads', 'many-files'), ctx, { recursive: true });
await sh('cp', ['-al', nm, join(ctx, 'node_modules')]);
const env = { TSBUILD_ROOT: store, CI: 'true' };
log('base image and cold build (untimed)');
await sh(tsbuild, ['build', '-q', '-t', 'bench/busybox:base', join(repo, 'fixtures', 'busybox')], {
  env: { ...env, SOURCE_DATE_EPOCH: '1700000000' },
});
await sh(tsbuild, ['build', '-q', '-t', 'bench/many-files', ctx], { env });

const times = { noop: [], dry: [] };
const noop = async () => {
  const r = await sh(tsbuild, ['build', '-q', '-t', 'bench/many-files', ctx], { env });
  times.noop.push(r.ms);
};
const dry = async () => {
  const r = await sh(tsbuild, ['build', '--dry-run', '--explain=json', '-t', 'bench/many-files', ctx], { env });
  if (JSON.parse(r.stdout).allCached !== true) throw new Error('the dry run of an unchanged context found a miss');
  times.dry.push(r.ms);
};
for (let i = 0; i < runs; i++) {
  if (i % 2) (await dry(), await noop());
  else (await noop(), await dry());
  log(`run ${i + 1}/${runs}: no-op ${fmtS(times.noop.at(-1))} s, dry run ${fmtS(times.dry.at(-1))} s`);
}
const cell = (xs) => `${fmtS(median(xs))} [${fmtS(min(xs))}–${fmtS(max(xs))}]`;
const files = quick ? '2,000' : '20,000';
console.log('| workload | no-op build (s) | dry run (s) | dry run / no-op |');
console.log('|---|---|---|---|');
console.log(
  `| many-files (${files} files), unchanged | ${cell(times.noop)} | ${cell(times.dry)} | ` +
    `${(median(times.dry) / median(times.noop)).toFixed(2)} |`,
);
rmSync(work, { recursive: true, force: true });
