#!/usr/bin/env node
// Start-up of the short commands, two builds of tsbuild against each other (and skopeo as the reference): the
// commands whose time is almost all Node's and the CLI's start, measured as a user runs them (bin/tsbuild, the
// /bin/sh launcher), interleaved (A B, B A, A B…) so that the machine's drift falls on both alike.
//
//   version   tsbuild --version
//   rpull     tsbuild pull REF, the image already in the store under that tag (repeated pull)
//   fpull     tsbuild pull REF into an empty store (first pull)
//   rpush     tsbuild push REF again (HEADs and the manifest, no blob bytes)
//   fpush     tsbuild push of a new single-blob image (FROM scratch + one 20-byte file) to a new repository
//   noop      tsbuild build of bench/workloads/tiny, all cached (a no-op build)
//   skopeo rows: skopeo copy docker://REF oci:DIR:TAG repeated, skopeo copy oci:STORE:REF docker://… repeated,
//   skopeo --version.
// The image is FROM scratch + one small file (one layer), built by each build into a store of its own and pushed
// once to a local docker-registry (the test kit's helper). Each sample's wall and CPU (user + system of the
// command and its children) come from bash's `time`, to the millisecond. Each build's code caches are made
// before any timing (one untimed run of each command).
//
//   node bench/startup-bench.mjs --before /path/to/other/checkout/packages/builder/bin/tsbuild [--runs 21]
//                                [--cases version,rpull,fpull,rpush,fpush,noop,skopeo]
// "after" is this checkout's packages/builder/bin/tsbuild (after `pnpm run build`).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const before = arg('before');
if (!before) {
  console.error(
    'usage: node bench/startup-bench.mjs --before OTHER/packages/builder/bin/tsbuild [--runs N] [--cases …]',
  );
  process.exit(2);
}
const runs = Number(arg('runs', '21'));
const cases = arg('cases', 'version,rpull,fpull,rpush,fpush,noop,skopeo').split(',');
const builds = { before, after: path.join(root, 'packages/builder/bin/tsbuild') };
const { startRegistry } = await import(path.join(root, 'packages/testkit/dist/src/registry.js'));

const work = mkdtempSync(path.join(os.tmpdir(), 'tsbuild-startup-bench-'));
const reg = await startRegistry();
const ref = `${reg.host}/bench/one:1`;
const store = (v) => path.join(work, `store-${v}`);

/** Runs argv under bash's `time`: { wall, cpu } in ms; throws with its stderr if it fails. */
function timed(argv, env = {}) {
  const script = 'TIMEFORMAT="%3R %3U %3S"; { time "$@" >/dev/null 2>"$ERR"; } 2>&1';
  const err = path.join(work, 'stderr');
  const r = spawnSync('bash', ['-c', script, 'bash', ...argv], {
    env: { ...process.env, ERR: err, ...env },
    encoding: 'utf8',
  });
  const m = /(\d+\.\d+) (\d+\.\d+) (\d+\.\d+)\s*$/.exec(r.stdout);
  if (r.status !== 0 || !m) throw new Error(`${argv.join(' ')} failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return { wall: Number(m[1]) * 1000, cpu: (Number(m[2]) + Number(m[3])) * 1000 };
}
const sh = (argv, env = {}) => {
  const r = spawnSync(argv[0], argv.slice(1), { env: { ...process.env, ...env }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}):\n${r.stdout}${r.stderr}`);
};

const ctx = path.join(work, 'ctx');
mkdirSync(ctx);
const image = (text) => {
  writeFileSync(path.join(ctx, 'hello.txt'), text);
  writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /\n');
};
let serial = 0;
const prepare = {
  version: () => ({ args: ['--version'] }),
  rpull: (v) => ({ args: ['pull', ref], env: { TSBUILD_ROOT: store(v) } }),
  fpull: (v) => {
    rmSync(path.join(work, `fresh-${v}`), { recursive: true, force: true });
    return { args: ['pull', ref], env: { TSBUILD_ROOT: path.join(work, `fresh-${v}`) } };
  },
  rpush: (v) => ({ args: ['push', '--progress', 'plain', ref], env: { TSBUILD_ROOT: store(v) } }),
  fpush: (v, bin) => {
    const name = `${reg.host}/bench/new${++serial}${v}:1`;
    image(`hello ${serial} ${v}\n`);
    sh([bin, 'build', '-q', '-t', name, ctx], { TSBUILD_ROOT: store(v) });
    return { args: ['push', '--progress', 'plain', name], env: { TSBUILD_ROOT: store(v) } };
  },
  noop: (v) => ({
    args: ['build', '-q', '-t', 'bench/tiny:1', path.join(root, 'bench/workloads/tiny')],
    env: { TSBUILD_ROOT: store(v) },
  }),
};
const skopeo = {
  'skopeo copy docker:// → oci: (repeated)': () => [
    ...['skopeo', '--insecure-policy', 'copy', '-q', '--src-tls-verify=false'],
    ...[`docker://${ref}`, `oci:${path.join(work, 'skopeo-oci')}:bench/one:1`],
  ],
  'skopeo copy oci: → docker:// (repeated)': () => [
    ...['skopeo', '--insecure-policy', 'copy', '-q', '--dest-tls-verify=false'],
    ...[`oci:${store('before')}:${ref}`, `docker://${reg.host}/bench/skopeo:1`],
  ],
  'skopeo --version': () => ['skopeo', '--version'],
};

try {
  image('hello\n');
  for (const [v, bin] of Object.entries(builds)) {
    const env = { TSBUILD_ROOT: store(v) };
    sh([bin, 'build', '-q', '-t', ref, ctx], env);
    sh([bin, 'build', '-q', '-t', 'bench/busybox:base', path.join(root, 'fixtures/busybox')], env);
    sh([bin, 'push', ref], env);
    // Untimed: each command once, so that each build's code caches are made before the samples.
    for (const c of cases.filter((c) => c in prepare)) {
      const p = prepare[c](v, bin);
      sh([bin, ...p.args], p.env);
    }
  }
  for (const c of Object.values(skopeo)) sh(c());

  const samples = new Map();
  const add = (key, s) => samples.set(key, [...(samples.get(key) ?? []), s]);
  for (let i = 0; i < runs; i++) {
    const order = Object.entries(builds);
    if (i % 2) order.reverse();
    for (const c of cases.filter((c) => c in prepare))
      for (const [v, bin] of order) {
        const p = prepare[c](v, bin);
        add(`${c}\t${v}`, timed([bin, ...p.args], p.env));
      }
    if (cases.includes('skopeo')) for (const [name, argv] of Object.entries(skopeo)) add(`${name}\t`, timed(argv()));
  }

  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const cell = (a) => `${med(a).toFixed(1)} [${Math.min(...a).toFixed(1)}–${Math.max(...a).toFixed(1)}]`;
  console.log(
    `${runs} samples each, interleaved; ms, median [min–max]; load ${os.loadavg()[0].toFixed(1)} at the end\n`,
  );
  console.log('| command | build | wall | CPU (user + sys) |\n|---|---|---|---|');
  for (const [key, a] of samples) {
    const [c, v] = key.split('\t');
    console.log(`| ${c} | ${v} | ${cell(a.map((s) => s.wall))} | ${cell(a.map((s) => s.cpu))} |`);
  }
} finally {
  await reg.stop();
  rmSync(work, { recursive: true, force: true });
}
