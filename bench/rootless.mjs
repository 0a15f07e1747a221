#!/usr/bin/env node
// Rootless vs root: the tiny and ten-steps workloads built by root and by an ordinary user (made
// here with useradd and a subordinate range, removed at the end), interleaved, N runs each.
//
//   node bench/rootless.mjs [N]      as root, after `pnpm run build`; prints a markdown table
//
// Phases as in run.mjs: cold (after `prune --all`, untimed), then a no-op rebuild. The checkout must
// be readable by other users (the user runs bin/tsbuild from it). Each build ends with `sync`.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(repo, 'packages', 'builder', 'bin', 'tsbuild');
const runs = Number(process.argv[2] ?? 3);
const workloads = ['tiny', 'ten-steps'];
const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };

function must(r, what) {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const dir = mkdtempSync(join(tmpdir(), 'tsbuild-bench-rootless-'));
chmodSync(dir, 0o755);
const user = `tsbbench${process.pid}`;
const home = join(dir, 'home');
const rootStore = join(dir, 'root-store');
must(spawnSync('useradd', ['-m', '-d', home, '-s', '/bin/sh', '-U', user], { encoding: 'utf8' }), 'useradd');
const uid = must(spawnSync('id', ['-u', user], { encoding: 'utf8' }), 'id').trim();
const subids = ['/etc/subuid', '/etc/subgid'];
const strip = (f) =>
  readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith(`${user}:`));
for (const f of subids) writeFileSync(f, [...strip(f), `${user}:400000:65536`].map((l) => l + '\n').join(''));

function tsbuild(mode, args) {
  const cmd =
    mode === 'root'
      ? spawnSync(bin, [args[0], '--root', rootStore, ...args.slice(1)], { encoding: 'utf8', env })
      : spawnSync('runuser', ['-u', user, '--', 'env', `HOME=${home}`, `TMPDIR=${home}`, bin, ...args], {
          encoding: 'utf8',
          env,
          cwd: dir,
        });
  return must(cmd, `${mode}: tsbuild ${args.join(' ')}`);
}

function timed(mode, args) {
  const t = process.hrtime.bigint();
  tsbuild(mode, args);
  spawnSync('sync');
  return Number(process.hrtime.bigint() - t) / 1e6;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  for (const mode of ['root', 'rootless'])
    tsbuild(mode, ['build', '-q', '-t', 'bench/busybox:base', join(repo, 'fixtures', 'busybox')]);
  const times = {};
  for (let i = 0; i < runs; i++)
    for (const w of workloads)
      for (const mode of i % 2 ? ['rootless', 'root'] : ['root', 'rootless']) {
        const ctx = join(repo, 'bench', 'workloads', w);
        tsbuild(mode, ['prune', '--all', '--grace', '0']);
        const cold = timed(mode, ['build', '-q', '-t', `b/${w}`, ctx]);
        const noop = timed(mode, ['build', '-q', '-t', `b/${w}`, ctx]);
        ((times[`${w} ${mode}`] ??= { cold: [], noop: [] }).cold.push(cold), times[`${w} ${mode}`].noop.push(noop));
      }
  const ms = (x) => `${Math.round(x)} ms`;
  console.log(`| workload | phase | root | rootless | rootless / root |  (median of ${runs})`);
  console.log('|---|---|---|---|---|');
  for (const w of workloads)
    for (const phase of ['cold', 'noop']) {
      const r = median(times[`${w} root`][phase]);
      const u = median(times[`${w} rootless`][phase]);
      console.log(`| ${w} | ${phase} | ${ms(r)} | ${ms(u)} | ${(u / r).toFixed(2)}x |`);
    }
} finally {
  spawnSync('userdel', [user]);
  for (const f of subids)
    writeFileSync(
      f,
      strip(f)
        .map((l) => l + '\n')
        .join(''),
    );
  rmSync(dir, { recursive: true, force: true });
  rmSync(`/dev/shm/tsbuild-sandbox-${uid}`, { recursive: true, force: true });
}
