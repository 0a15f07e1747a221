#!/usr/bin/env node
// Per-run overhead of the sandbox for `true`, against runc on the same machine in the same process.
//
//   node bench/sandbox-overhead.mjs [iterations]     (root; after `pnpm run build`)
//
// Each sample is a fresh upper/work pair over the extracted busybox rootfs, as a RUN step gets.
//   sandbox: run() from @tsbuild/sandbox (overlay, namespaces, /proc, /dev, hosts files, cgroup, teardown)
//            in the default network of a build: it joins the build's private network namespace (made
//            once, before the samples, as a build makes it on its first RUN step)
//   sandbox-none: the same with --network none (a new network namespace per run, lo only)
//   sandbox-host: the same in the host's network namespace (the default before the private network)
//   runc:    `runc run --bundle` of an OCI bundle whose rootfs is an overlay mounted for that run
//            (mount + runc + umount: the work run() does too), and runc alone on a pre-mounted overlay.
//   spawn:   spawning /bin/true directly, the floor.
// Samples are interleaved so that noise from a shared VM hits every variant alike.
import { spawnSync, spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { run, startNetwork } = await import(join(repo, 'packages/sandbox/dist/src/index.js'));
const N = Number(process.argv[2] ?? 30);

const tmp = mkdtempSync('/tmp/tsbuild-bench-sandbox-');
const lower = join(tmp, 'busybox');
mkdirSync(lower);
spawnSync('tar', ['-xf', join(repo, 'fixtures/busybox/rootfs.tar'), '-C', lower], { stdio: 'inherit' });

const bundle = join(tmp, 'bundle');
const rootfs = join(bundle, 'rootfs');
mkdirSync(rootfs, { recursive: true });
const runcRoot = join(tmp, 'runc-state');
spawnSync('runc', ['spec', '--bundle', bundle], { stdio: 'inherit' });
const config = JSON.parse((await import('node:fs')).readFileSync(join(bundle, 'config.json'), 'utf8'));
config.process.terminal = false;
config.process.args = ['true'];
config.root = { path: 'rootfs', readonly: false };
writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));

let k = 0;
function freshDirs() {
  const d = join(tmp, `r${++k}`);
  mkdirSync(join(d, 'upper'), { recursive: true });
  mkdirSync(join(d, 'work'));
  return { d, upper: join(d, 'upper'), work: join(d, 'work') };
}

function exec(cmd, args) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}`))));
  });
}

async function time(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const t0 = performance.now();
const network = await startNetwork();
const networkStartMs = performance.now() - t0;

async function sandbox(net) {
  const { d, upper, work } = freshDirs();
  // As a build's RUN step: a volatile overlay (no sync of the upper filesystem at unmount).
  const exit = await run({
    root: { lowerdirs: [lower], upperdir: upper, workdir: work, volatile: true },
    argv: ['true'],
    env: ['PATH=/bin'],
    cwd: '/',
    uid: 0,
    gid: 0,
    ...net,
  });
  if (exit.code !== 0) throw new Error(`sandbox: ${JSON.stringify(exit)}`);
  rmSync(d, { recursive: true });
}

const variants = {
  spawn: () => exec('/bin/true', []),
  sandbox: () => sandbox({ network: 'private', netns: network }),
  'sandbox-none': () => sandbox({ network: 'none' }),
  'sandbox-host': () => sandbox({ network: 'host' }),
  'runc+overlay': async () => {
    const { d, upper, work } = freshDirs();
    await exec('mount', [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${lower},upperdir=${upper},workdir=${work}`,
      rootfs,
    ]);
    try {
      await exec('runc', ['--root', runcRoot, 'run', '--bundle', bundle, `bench-${k}`]);
    } finally {
      await exec('umount', [rootfs]);
      rmSync(d, { recursive: true });
    }
  },
};

// runc alone, on an overlay mounted once.
const pre = freshDirs();
const preRoot = join(tmp, 'bundle-pre');
mkdirSync(join(preRoot, 'rootfs'), { recursive: true });
writeFileSync(join(preRoot, 'config.json'), JSON.stringify(config));
spawnSync('mount', [
  '-t',
  'overlay',
  'overlay',
  '-o',
  `lowerdir=${lower},upperdir=${pre.upper},workdir=${pre.work}`,
  join(preRoot, 'rootfs'),
]);
variants.runc = () => exec('runc', ['--root', runcRoot, 'run', '--bundle', preRoot, `bench-pre-${++k}`]);

const samples = Object.fromEntries(Object.keys(variants).map((v) => [v, []]));
try {
  for (const v of Object.keys(variants)) await variants[v](); // warm up
  for (let i = 0; i < N; i++) for (const v of Object.keys(variants)) samples[v].push(await time(variants[v]));
} finally {
  await network.close();
  spawnSync('umount', [join(preRoot, 'rootfs')]);
  rmSync(tmp, { recursive: true, force: true });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const m = Object.fromEntries(Object.entries(samples).map(([v, xs]) => [v, median(xs)]));
console.log(`median of ${N} runs of \`true\` (ms):`);
for (const [v, ms] of Object.entries(m)) console.log(`  ${v.padEnd(14)} ${ms.toFixed(1)}`);
console.log(`private network start (once per build) ${networkStartMs.toFixed(1)} ms`);
console.log(
  `sandbox / runc+overlay       = ${(m.sandbox / m['runc+overlay']).toFixed(2)}x` +
    ` (network none: ${(m['sandbox-none'] / m['runc+overlay']).toFixed(2)}x, host: ` +
    `${(m['sandbox-host'] / m['runc+overlay']).toFixed(2)}x)`,
);
console.log(`sandbox / runc (pre-mounted) = ${(m.sandbox / m.runc).toFixed(2)}x`);
console.log(
  `overhead over a bare spawn: sandbox ${(m.sandbox - m.spawn).toFixed(1)} ms, runc+overlay ` +
    `${(m['runc+overlay'] - m.spawn).toFixed(1)} ms ` +
    `(ratio ${((m.sandbox - m.spawn) / (m['runc+overlay'] - m.spawn)).toFixed(2)}x)`,
);
