#!/usr/bin/env node
// Rootless vs root: the tiny and ten-steps workloads built by root and by an ordinary user (made
// here with useradd and a subordinate range, removed at the end), and by `buildah bud --layers` as
// that user (rootless, native overlay), interleaved, N runs each.
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

// buildah as the user, with its storage in the user's home (rootless: its own user namespace).
function buildah(args) {
  const g = ['--root', join(home, 'bstore'), '--runroot', join(home, 'brun'), '--storage-driver', 'overlay'];
  const run = join(home, 'run');
  const cmd = ['-u', user, '--', 'env', `HOME=${home}`, `XDG_RUNTIME_DIR=${run}`, 'buildah', ...g, ...args];
  return must(spawnSync('runuser', cmd, { encoding: 'utf8', env, cwd: dir }), `buildah ${args.join(' ')}`);
}

function buildahFlush() {
  buildah(['rm', '--all']);
  const imgs = JSON.parse(buildah(['images', '--json']) || '[]');
  const drop = imgs.flatMap((i) => i.names || []).filter((n) => !n.endsWith('bench/busybox:base'));
  if (drop.length) buildah(['rmi', '-f', ...drop]);
  buildah(['rmi', '--prune']);
}

function timed(mode, args) {
  const t = process.hrtime.bigint();
  if (mode === 'buildah') buildah(args);
  else tsbuild(mode, args);
  spawnSync('sync');
  return Number(process.hrtime.bigint() - t) / 1e6;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  for (const mode of ['root', 'rootless'])
    tsbuild(mode, ['build', '-q', '-t', 'bench/busybox:base', join(repo, 'fixtures', 'busybox')]);
  must(spawnSync('runuser', ['-u', user, '--', 'mkdir', '-p', join(home, 'run')], { encoding: 'utf8' }), 'mkdir');
  buildah(['bud', '--layers', '-t', 'bench/busybox:base', join(repo, 'fixtures', 'busybox')]);
  const modes = ['root', 'rootless', 'buildah'];
  const times = {};
  for (let i = 0; i < runs; i++)
    for (const w of workloads)
      for (const mode of [...modes.slice(i % 3), ...modes.slice(0, i % 3)]) {
        const ctx = join(repo, 'bench', 'workloads', w);
        const args =
          mode === 'buildah'
            ? ['bud', '--layers', '--pull=never', '-t', `b/${w}`, ctx]
            : ['build', '-q', '-t', `b/${w}`, ctx];
        if (mode === 'buildah') buildahFlush();
        else tsbuild(mode, ['prune', '--all', '--grace', '0']);
        const cold = timed(mode, args);
        const noop = timed(mode, args);
        ((times[`${w} ${mode}`] ??= { cold: [], noop: [] }).cold.push(cold), times[`${w} ${mode}`].noop.push(noop));
      }
  const ms = (x) => `${Math.round(x)} ms`;
  console.log(`(median of ${runs})\n`);
  console.log('| workload | phase | root | rootless | buildah rootless | rootless / root | rootless / buildah |');
  console.log('|---|---|---|---|---|---|---|');
  for (const w of workloads)
    for (const phase of ['cold', 'noop']) {
      const [r, u, b] = modes.map((m) => median(times[`${w} ${m}`][phase]));
      console.log(
        `| ${w} | ${phase} | ${ms(r)} | ${ms(u)} | ${ms(b)} | ${(u / r).toFixed(2)}x | ${(u / b).toFixed(2)}x |`,
      );
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
