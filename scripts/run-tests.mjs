#!/usr/bin/env node
// Runs every test file with uvu, one process per file so that a crash in one cannot hide
// the others, and prints the summed totals as `N passed, M failed`.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as hostGuard from './host-guard.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const uvu = join(root, 'node_modules', 'uvu', 'bin.js');
const only = process.argv.slice(2);

// Package unit suites first, then the end-to-end suite that drives the CLI.
const dirs = [
  ...readdirSync(join(root, 'packages')).sort().map((p) => join('packages', p, 'dist', 'test')),
  join('test', 'dist'),
].filter((dir) => existsSync(join(root, dir)));
const suites = dirs
  .flatMap((dir) => readdirSync(join(root, dir)).filter((f) => f.endsWith('.test.js')).sort().map((f) => join(dir, f)))
  .filter((file) => only.length === 0 || only.some((o) => file.includes(o)));

function run(file) {
  return new Promise((resolve) => {
    const name = file.split('/').pop().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const child = spawn(process.execPath, [uvu, file.slice(0, file.lastIndexOf('/')), `^${name}$`], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b) => { out += b; process.stdout.write(b); });
    child.on('close', (code) => {
      const num = (label) => Number((out.match(new RegExp(`${label}:\\s+(\\d+)`)) ?? [])[1] ?? NaN);
      const total = num('Total'), passed = num('Passed'), skipped = num('Skipped');
      if (Number.isNaN(total)) {
        // uvu died before printing its summary: count the whole suite as one failure.
        resolve({ passed: 0, failed: 1, skips: [], code });
        return;
      }
      const failed = total - passed - (Number.isNaN(skipped) ? 0 : skipped);
      // A test that called testkit's skip() passed in uvu's eyes: count it as a skip instead.
      const skips = [...out.matchAll(/^TSBUILD-SKIP: (.*)$/gm)].map((m) => m[1]);
      resolve({ passed: passed - skips.length, failed: Math.max(failed, code === 0 ? 0 : 1), skips, code });
    });
  });
}

// Host guard (scripts/host-guard.mjs): every test process gets this run's TMPDIR and tag; what the
// suite leaves on or takes from the host (interfaces, mounts, cgroups, processes) fails the run.
const guardRun = hostGuard.prepare();
Object.assign(process.env, guardRun.env);
const guardBefore = hostGuard.snapshot(guardRun);

let passed = 0, failed = 0;
const skipped = [];
for (const dir of suites) {
  console.log(`\n=== ${dir}`);
  const r = await run(dir);
  passed += r.passed; failed += r.failed;
  skipped.push(...r.skips.map((why) => `${dir}: ${why}`));
  console.log(`--- ${dir}: ${r.passed} passed, ${r.failed} failed, ${r.skips.length} skipped (exit ${r.code})`);
}
const guard = hostGuard.compare(guardBefore, hostGuard.snapshot(guardRun));
console.log(`\n${hostGuard.report(guard, guardBefore)}`);
const kept = hostGuard.finish(guardRun);
if (kept) console.log(`host guard: ${kept}`);
if (guard.problems.length) failed += 1;
if (skipped.length) console.log(`\nskipped:\n${skipped.map((s) => `  ${s}`).join('\n')}`);
console.log(`${passed} passed, ${failed} failed, ${skipped.length} skipped`);
process.exit(failed === 0 && suites.length > 0 ? 0 : 1);
