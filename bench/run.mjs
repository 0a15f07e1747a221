#!/usr/bin/env node
// The benchmark harness: tsbuild against BuildKit (Debian's docker.io) and Buildah on the same workloads.
//
//   node bench/run.mjs [--quick] [--runs N] [--only tiny,many-files,ci-push,scale,pull,run]
//                      [--builders tsbuild,buildkit,buildah] [--no-sub] [--no-limits] [--out FILE]
//                      [--scale-values 'context=2000,20000;layers=120'] [--live] [--no-sync] [--help]
//
// Root, after `pnpm run build`. Writes bench/RESULTS.md (keeping its hand-written "Where the time goes"
// section) and the raw samples to bench/work/results.json. tsbuild under test is a build of the committed HEAD in
// bench/work/src (--live: the working tree as built). Takes ~30 min in full; --quick (1 run, small data) < 5 min.
//
// For every workload, every run, every builder in turn (A B C A B C…, to spread drift over all of them):
//   flush (untimed) → cold build → no-op rebuild → edit one file read by a late step → one-change rebuild.
// Then the measurements of bench/lib/measures.mjs, in the same style (--only selects them by name too):
//   ci-push (build + first push), scale-context, scale-steps, scale-stages, scale-layers (or `scale` for the four),
//   pull (tsbuild pull vs skopeo), run (run --rm true: tsbuild vs podman vs docker).
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync, readdirSync, cpSync } from 'node:fs';
import os from 'node:os';
import { sh, timed, median, min, max, fmtS, fmtMB, sleep } from './lib/util.mjs';
import { tsbuildBuilder, buildkitBuilder, buildahBuilder, FLUSH, SIZE, PUSH } from './lib/builders.mjs';
import { missing as missingTool } from './lib/builders.mjs';
import { NEW_MEASURES, ciPush, scale, pull, runStart } from './lib/measures.mjs';
import { reportCiPush, reportScale, reportPull, reportRun } from './lib/measures.mjs';
import { ensureManyFiles, MTIME } from './gen-data.mjs';
import { utimesSync } from 'node:fs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const work = join(here, 'work');

// ---- options
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
// --help prints this file's header; an unknown flag is refused before anything starts (a typo must not cost a run).
const FLAGS = {
  bool: ['--quick', '--no-sync', '--no-sub', '--no-limits', '--live', '--help', '-h'],
  value: ['--runs', '--only', '--builders', '--out', '--scale-values'],
};
if (argv.includes('--help') || argv.includes('-h')) {
  const header = readFileSync(fileURLToPath(import.meta.url), 'utf8')
    .split('\n')
    .slice(1);
  console.log(
    header
      .slice(
        0,
        header.findIndex((l) => !l.startsWith('//')),
      )
      .map((l) => l.replace(/^\/\/ ?/, ''))
      .join('\n'),
  );
  process.exit(0);
}
for (let i = 0; i < argv.length; i++) {
  if (FLAGS.value.includes(argv[i]) && i + 1 < argv.length) i++;
  else if (!FLAGS.bool.includes(argv[i])) {
    console.error(`bench: ${argv[i]}: unknown flag or missing value (--help lists them)`);
    process.exit(2);
  }
}
const quick = argv.includes('--quick');
const runs = Number(opt('--runs', quick ? 1 : 5));
const only = opt('--only', '') ? opt('--only').split(',') : null;
const builderNames = opt('--builders', 'tsbuild,buildkit,buildah').split(',');
// Every timed build ends with `sync`, for every builder, so each pays for its own write-back instead of leaving
// dirty pages for whichever builder runs next (--no-sync: none of them syncs).
const syncEach = !argv.includes('--no-sync');
const doSub = !argv.includes('--no-sub');
const doLimits = !argv.includes('--no-limits');
const live = argv.includes('--live');
const outFile = opt('--out', join(here, quick ? 'RESULTS-quick.md' : 'RESULTS.md'));
const bigMB = quick ? 60 : 500;
const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

if (process.getuid() !== 0) {
  console.error('bench: run as root');
  process.exit(2);
}
// tsbuild under test: by default a snapshot of the committed HEAD (git archive → bench/work/src, pnpm install
// --offline, pnpm run build), so that work in progress in the tree cannot change it mid-run; --live uses the tree.
const head = (await sh('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'])).stdout.trim();
let tsbuildSrc = repo;
if (!live) {
  tsbuildSrc = join(here, 'work', 'src');
  const stamp = join(tsbuildSrc, '.bench-commit');
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8').trim() !== head) {
    log(`snapshot of HEAD ${head} → bench/work/src (pnpm install --offline, pnpm run build)`);
    rmSync(tsbuildSrc, { recursive: true, force: true });
    mkdirSync(tsbuildSrc, { recursive: true });
    await sh('sh', ['-c', `git -C ${repo} archive HEAD | tar -x -C ${tsbuildSrc}`]);
    await sh('sh', ['-c', 'pnpm install --frozen-lockfile --offline --reporter=silent && pnpm run --silent build'], {
      cwd: tsbuildSrc,
    });
    writeFileSync(stamp, head + '\n');
  }
}
if (!existsSync(join(tsbuildSrc, 'packages/builder/dist/src/cli/main.js'))) {
  console.error('bench: run `pnpm run build` first');
  process.exit(2);
}
// /usr/bin/time measures peak RSS; Debian's `time` package provides it.
if (!existsSync('/usr/bin/time'))
  await sh('sh', ['-c', 'apt-get install -y -qq time || (apt-get update -qq && apt-get install -y -qq time)'], {
    quiet: false,
  });

// ---- workloads
const W = {
  tiny: { change: 'hello.txt' },
  'ten-steps': { change: 'late.txt' },
  'many-files': { change: 'src/index.js' },
  'big-file': { change: 'note.txt', args: [`SIZE_MB=${bigMB}`] },
  debian: { change: 'app.conf', base: 'debian' },
};
// --only takes workload names and measurement names (`scale` = the four scale-* ones); no --only: everything.
if (only) {
  const known = [...Object.keys(W), ...NEW_MEASURES, 'scale'];
  const bad = only.filter((n) => !known.includes(n));
  if (bad.length) {
    console.error(`bench: --only: unknown ${bad.join(', ')} (known: ${known.join(', ')})`);
    process.exit(2);
  }
}
const names = Object.keys(W).filter((n) => !only || only.includes(n));
// --scale-values DIM=a,b,c[;DIM=…] replaces the sizes of a scale dimension (e.g. one size of the full run, checked
// on its own): context, steps, stages, layers.
const scaleValues = Object.fromEntries(
  (opt('--scale-values', '') || '')
    .split(';')
    .filter(Boolean)
    .map((kv) => {
      const [k, v] = kv.split('=');
      const xs = (v ?? '').split(',').map(Number);
      if (!['context', 'steps', 'stages', 'layers'].includes(k) || xs.some((x) => !(Number.isInteger(x) && x > 0))) {
        console.error(`bench: --scale-values: "${kv}" is not DIM=N,N,… (DIM: context, steps, stages, layers)`);
        process.exit(2);
      }
      return [k, xs];
    }),
);
const measures = NEW_MEASURES.filter(
  (m) => !only || only.includes(m) || (m.startsWith('scale-') && only.includes('scale')),
);
// A peer that is not installed is reported as such, never a crash: builders and tools checked here.
const missing = Object.fromEntries(
  ['buildkit', 'buildah', 'podman', 'skopeo'].map((t) => [t, missingTool(t)]).filter(([, m]) => m),
);
for (const [t, m] of Object.entries(missing)) log(`${t}: not installed (no ${m}); reported as "not installed"`);
if (measures.length && !builderNames.includes('tsbuild')) {
  console.error(`bench: ${measures.join(', ')} need tsbuild in --builders`);
  process.exit(2);
}

// Contexts live in bench/work/ctx/<name>: the committed workload files plus generated data (hard links).
function prepareContext(name) {
  const ctx = join(work, 'ctx', name);
  rmSync(ctx, { recursive: true, force: true });
  cpSync(join(here, 'workloads', name), ctx, { recursive: true });
  if (name === 'many-files') {
    const nm = ensureManyFiles(quick, log);
    return sh('cp', ['-al', nm, join(ctx, 'node_modules')]).then(() => ctx);
  }
  return Promise.resolve(ctx);
}
// Same mtimes on every builder's view of the context (BuildKit and tsbuild look at metadata too).
function touchAll(p) {
  for (const e of readdirSync(p, { withFileTypes: true })) {
    if (e.name === 'node_modules') continue; // generated with fixed mtimes already
    const q = join(p, e.name);
    if (e.isDirectory()) touchAll(q);
    utimesSync(q, MTIME, MTIME);
  }
}
function setChanged(ctx, rel, label) {
  const f = join(ctx, rel);
  const orig = readFileSync(join(here, 'workloads', ctx.split('/').pop(), rel));
  writeFileSync(f, label ? Buffer.concat([orig, Buffer.from(`// changed: ${label}\n`)]) : orig);
  utimesSync(f, MTIME + (label ? 1 : 0), MTIME + (label ? 1 : 0));
}

// ---- bases: built by each builder from the same context, the same way
async function prepareBases() {
  await sh('bash', [join(repo, 'fixtures/busybox/make-rootfs.sh')]);
  const bases = [
    {
      tag: 'bench/busybox:base',
      ctx: join(repo, 'fixtures/busybox'),
      dockerfile: join(repo, 'fixtures/busybox/Dockerfile'),
    },
  ];
  if (names.includes('debian')) {
    await sh('bash', [join(here, 'gen-debian.sh')], { quiet: false });
    const ctx = join(work, 'ctx', 'debian-base');
    rmSync(ctx, { recursive: true, force: true });
    mkdirSync(ctx, { recursive: true });
    cpSync(join(here, 'workloads/debian/base.Dockerfile'), join(ctx, 'Dockerfile'));
    await sh('ln', [join(here, 'data/debian-rootfs.tar'), join(ctx, 'rootfs.tar')]);
    bases.push({ tag: 'bench/debian:base', ctx, dockerfile: join(ctx, 'Dockerfile') });
  }
  return bases;
}

// ---- machine limits on the same data
async function limits() {
  const rows = [];
  const reps = quick ? 1 : 3;
  const measure = async (what, data, script) => {
    const xs = [];
    await sh('bash', ['-o', 'pipefail', '-c', script]); // warm-up: the page cache holds the data, as for the builders
    for (let i = 0; i < reps; i++) {
      xs.push((await sh('bash', ['-o', 'pipefail', '-c', script])).ms);
    }
    rows.push({ what, data, median: median(xs), min: min(xs) });
  };
  const sets = [];
  if (names.includes('many-files')) {
    const nm = ensureManyFiles(quick, log);
    sets.push({ data: `many-files tree (${quick ? '2,000 files, 15' : '20,000 files, 150'} MiB)`, dir: nm });
  }
  if (names.includes('big-file')) {
    const d = join(work, 'limits-big');
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
    const n = (bigMB - 50) / 2;
    const gen =
      `cd ${d} && i=0; while [ $i -lt ${n} ]; do head -c 1048576 /dev/urandom; yes 'compressible text 0123456789 ` +
      `abcdefghij' | head -c 1048576; i=$((i+1)); done > big.bin && ` +
      `for p in 1 2 3 4 5; do head -c 5242880 /dev/urandom > p$p.bin; yes "part $p" | head -c 5242880 >> p$p.bin; done`;
    rows.push({
      what: 'generate the data with the same shell loop, on the host',
      data: `big-file (${bigMB} MB)`,
      median: (await sh('bash', ['-c', gen])).ms,
      min: NaN,
    });
    sets.push({ data: `big-file data (${bigMB} MB)`, dir: d });
  }
  for (const s of sets) {
    await measure('`tar -c | sha256sum`', s.data, `tar -C ${s.dir} -cf - . | sha256sum >/dev/null`);
    await measure('`tar -c | gzip -1`', s.data, `tar -C ${s.dir} -cf - . | gzip -1 >/dev/null`);
    await measure('`tar -c | pigz -1` (2 cores)', s.data, `tar -C ${s.dir} -cf - . | pigz -1 >/dev/null`);
    await measure('`tar -c | zstd -1`', s.data, `tar -C ${s.dir} -cf - . | zstd -q -1 >/dev/null`);
    await measure(
      '`cp -a` (same filesystem)',
      s.data,
      `rm -rf ${work}/limits-cp && cp -a ${s.dir} ${work}/limits-cp && sync -f ${work}/limits-cp; rm -rf ` +
        `${work}/limits-cp`,
    );
  }
  rmSync(join(work, 'limits-big'), { recursive: true, force: true });
  return rows;
}

// ---- sub-benches written by others: run them if present, quote their output
async function subBenches() {
  const out = {};
  const sandbox = join(here, 'sandbox-overhead.mjs');
  if (existsSync(sandbox)) {
    log('sub-bench: sandbox-overhead.mjs');
    const r = await sh('node', [sandbox, String(quick ? 10 : 30)], { ok: true });
    const m = /sandbox \/ runc\+overlay\s*=\s*([\d.]+)x/.exec(r.stdout);
    const ov = /ratio ([\d.]+)x\)/.exec(r.stdout);
    out.sandbox = {
      ok: r.code === 0,
      text: (r.stdout + (r.code ? r.stderr : '')).trim(),
      ratio: m ? Number(m[1]) : NaN,
      overheadRatio: ov ? Number(ov[1]) : NaN,
    };
  } else out.sandbox = { ok: false, text: 'bench/sandbox-overhead.mjs is not there.' };
  const push = join(here, 'push-bench.mjs');
  const help = await sh('node', [join(repo, 'packages/builder/bin/tsbuild.js'), '--help'], { ok: true });
  out.pushWired = /^\s+push\s/m.test(help.stdout + help.stderr);
  if (existsSync(push)) {
    // push-bench.mjs drives the layerstore's registry client (remote.push) directly: it measures the code
    // `tsbuild push` will use, whether or not the CLI command is wired yet.
    log('sub-bench: push-bench.mjs');
    const r = await sh('node', [push, ...(quick ? ['--runs', '1'] : ['--runs', '5'])], { ok: true });
    const row = (k) =>
      new RegExp(`^\\| ${k} \\| ([\\d.]+) ms[^|]*\\| ([\\d.]+) ms \\| ([\\d.]+) \\|`, 'm').exec(r.stdout);
    const first = row('first'),
      rep = row('repeat');
    // The CLI table (process start included, as users push): `| image | phase | ours | skopeo | ratio | …`,
    // the image named on its 'first' row only.
    const cli = {};
    let image = '';
    const secs = (t) => (t.endsWith(' ms') ? Number(t.slice(0, -3)) / 1000 : Number(t.replace(/ s$/, '')));
    for (const line of r.stdout.split('\n')) {
      const c = line.split('|').map((x) => x.trim());
      if (c.length < 7 || !['first', 'repeat', 'other repository'].includes(c[2])) continue;
      if (c[1])
        image = c[1].startsWith('many-files') ? 'many-files' : c[1].startsWith('big-file') ? 'big-file' : 'small';
      (cli[image] ??= {})[c[2]] = { ratio: Number(c[5]), s: secs(c[3].replace(/ \[.*$/, '')) };
    }
    out.push = {
      ok: r.code === 0,
      text: (r.stdout + (r.code ? r.stderr : '')).trim(),
      ratio: first ? Number(first[3]) : NaN,
      repeatS: rep ? Number(rep[1]) / 1000 : NaN,
      cli,
    };
  } else out.push = { ok: false, text: 'not available: bench/push-bench.mjs is not there.' };
  if (!out.pushWired)
    out.push.text +=
      '\n\nNote: `tsbuild push` is not wired into the CLI yet (`tsbuild --help` lists no push command); the ' +
      'figures above are the layerstore registry client called directly.';
  const layer = join(here, 'layer-bench.mjs');
  if (existsSync(layer) && !quick) {
    log('sub-bench: layer-bench.mjs');
    const r = await sh('node', [layer], { ok: true });
    out.layer = {
      ok: r.code === 0,
      text: (r.stdout + (r.code ? r.stderr.split('\n').slice(-15).join('\n') : '')).trim(),
    };
  } else out.layer = { ok: false, text: quick ? 'skipped in --quick mode' : 'bench/layer-bench.mjs is not there.' };
  return out;
}

// ---- main loop
const makers = {
  tsbuild: tsbuildBuilder,
  'tsbuild-nocomp': (o) => tsbuildBuilder({ ...o, name: 'tsbuild-nocomp', extra: ['--compression', 'none'] }),
  buildkit: buildkitBuilder,
  buildah: buildahBuilder,
};
const builders = builderNames
  .filter((n) => !missing[n])
  .map((n) => makers[n]({ repo: tsbuildSrc, work, head: live ? `${head}+working tree` : head }));
const results = {}; // results[workload][builder][phase] = [{ms, rssKB}]
const sizes = {};
const failures = [];
const commands = {};
const started = new Date();
const loadStart = os.loadavg();
let stopping = false;
async function teardownAll() {
  for (const b of builders) await b.teardown().catch((e) => log(`teardown ${b.name}: ${e.message}`));
}
// SIGINT or SIGTERM: stop the daemons and remove the bridge the harness made, then exit.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: stopping builders`);
    await teardownAll();
    process.exit(130);
  });
}

mkdirSync(work, { recursive: true });
const versions = {};
let limitRows = [],
  sub = {};
const extra = {}; // results of the measurements of bench/lib/measures.mjs
try {
  const bases = await prepareBases();
  for (const b of builders) {
    log(`setup ${b.name}: importing ${bases.map((x) => x.tag).join(', ')}`);
    await b.setup(bases);
    versions[b.name] = await b.version();
  }
  for (const name of names) {
    const w = W[name];
    const ctx = await prepareContext(name);
    touchAll(ctx);
    const tag = `bench/${name}:latest`;
    const args = w.args ?? [];
    results[name] = {};
    sizes[name] = {};
    commands[name] = Object.fromEntries(
      builders.map((b) => [b.name, b.command(ctx.replace(repo + '/', ''), tag, args)]),
    );
    for (let i = 0; i < runs; i++) {
      // Rotate the order every repetition (A B C, B C A, C A B, …): no builder always runs right after another.
      for (const b of builders.map((_, k) => builders[(k + i) % builders.length])) {
        const r = (results[name][b.name] ??= { cold: [], noop: [], change: [] });
        setChanged(ctx, w.change, null);
        await b.flush();
        await sh('sync', []); // the flush's own write-back is nobody's build time
        await sleep(200);
        const cold = await attempt(b, ctx, tag, args, `${name} cold`);
        const noop = await attempt(b, ctx, tag, args, `${name} no-op`);
        setChanged(ctx, w.change, `run ${i} ${b.name}`);
        const change = await attempt(b, ctx, tag, args, `${name} one-change`);
        setChanged(ctx, w.change, null);
        r.cold.push(cold);
        r.noop.push(noop);
        r.change.push(change);
        if (i === 0) {
          sizes[name][b.name] = await b.size(tag).catch(() => NaN);
          writeFileSync(
            join(work, `last-${name}-${b.name}.log`),
            cold.out + '\n----\n' + noop.out + '\n----\n' + change.out,
          );
        }
        log(
          `${name} run ${i + 1}/${runs} ${b.name.padEnd(8)} cold ${fmtS(cold.ms)}s  no-op ${fmtS(noop.ms)}s  ` +
            `one-change ${fmtS(change.ms)}s  peak RSS ${fmtMB(Math.max(cold.rssKB, noop.rssKB, change.rssKB))} MB`,
        );
      }
    }
    writeFileSync(join(work, 'results.json'), JSON.stringify({ results: strip(results), sizes }, null, 1));
  }
  const menv = { builders, runs, quick, work, repo, here, log, attemptWith, missing, scaleValues };
  Object.assign(menv, { prepareContext: prepareTouched, bigArgs: W['big-file'].args });
  // Node's own start (`node -e 0`, timed and synced as every build is): the floor a no-op build is held to. Twice:
  // as this environment starts node, and bare, NODE_EXTRA_CA_CERTS unset. The variable makes node parse every CA
  // of the bundle it names before any JavaScript runs (~35 ms here); tsbuild's launcher defers it until TLS is used,
  // so against the first a no-op could look faster than Node itself. The target is held to the bare start.
  if (names.length && builderNames.includes('tsbuild')) {
    const xs = [],
      bare = [];
    for (let i = 0; i < (quick ? 3 : 7); i++) {
      xs.push((await attemptWith('node', 'start', () => timed('node', ['-e', '0']))).ms);
      const env = { NODE_EXTRA_CA_CERTS: undefined }; // spawn leaves out a variable whose value is undefined
      bare.push((await attemptWith('node', 'start', () => timed('node', ['-e', '0'], { env }))).ms);
    }
    extra.nodeStart = { ms: xs, bareMs: bare };
    log(`node -e 0: median ${fmtS(median(xs))}s, bare (NODE_EXTRA_CA_CERTS unset) ${fmtS(median(bare))}s`);
  }
  if (measures.includes('ci-push')) {
    log('measurement: ci-push');
    extra.ciPush = await ciPush(menv);
  }
  const dims = measures.filter((m) => m.startsWith('scale-')).map((m) => m.slice(6));
  if (dims.length) {
    log(`measurement: scale (${dims.join(', ')})`);
    extra.scale = await scale(menv, dims);
  }
  if (measures.includes('pull')) {
    log('measurement: pull');
    extra.pull = await pull(menv);
  }
  if (measures.includes('run')) {
    log('measurement: run');
    extra.run = await runStart(menv);
  }
  writeFileSync(
    join(work, 'results-extra.json'),
    JSON.stringify(extra, (k, v) => (k === 'out' ? undefined : v), 1),
  );
  await teardownAll();
  if (doLimits) {
    log('machine limits');
    limitRows = await limits();
  }
  if (doSub) sub = await subBenches();
} catch (e) {
  await teardownAll();
  throw e;
}
// A failed build is logged and counted as missing (NaN), never silently retried into the figures.
function attempt(b, ctx, tag, args, what) {
  return attemptWith(b.name, what, () => b.build(ctx, tag, args));
}
async function attemptWith(name, what, fn) {
  try {
    const r = await fn();
    if (syncEach) {
      const s = await sh('sync', []);
      r.ms += s.ms;
      r.syncMs = s.ms;
    }
    return r;
  } catch (e) {
    // The command line, then the end of its output, where a build's error is; paths relative to the repository.
    const lines = e.message.replaceAll(`${repo}/`, '').split('\n');
    failures.push(`${name} ${what}: ${[lines[0], '...', ...lines.slice(-14)].join('\n')}`);
    log(`FAILED ${name} ${what}: ${e.message.split('\n').slice(-3).join(' / ')}`);
    return { ms: NaN, rssKB: NaN, out: e.message };
  }
}
// A workload's context for the measurements (the same files and mtimes as the build workloads use).
async function prepareTouched(name) {
  const ctx = await prepareContext(name);
  touchAll(ctx);
  return ctx;
}
function strip(r) {
  return Object.fromEntries(
    Object.entries(r).map(([w, bs]) => [
      w,
      Object.fromEntries(
        Object.entries(bs).map(([b, ps]) => [
          b,
          Object.fromEntries(
            Object.entries(ps).map(([p, xs]) => [p, xs.map(({ ms, rssKB, daemonKB }) => ({ ms, rssKB, daemonKB }))]),
          ),
        ]),
      ),
    ]),
  );
}

function tmpfsRunNote() {
  const run = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === '/run' && l.split(' ')[2] === 'tmpfs');
  return run ? '/run is a tmpfs here' : '/run is not a tmpfs here, so /dev/shm for both';
}

// ---- report
const M = (w, b, p) => median((results[w]?.[b]?.[p] ?? []).map((x) => x.ms));
const ratio = (w, p) => M(w, 'tsbuild', p) / M(w, 'buildkit', p);
const peakRss = (w, b) => max((results[w]?.[b] ? Object.values(results[w][b]).flat() : []).map((x) => x.rssKB));
const medMs = (xs) => median((xs ?? []).map((x) => x.ms));
const ciRatio = (img) => medMs(extra.ciPush?.images[img]?.tsbuild) / medMs(extra.ciPush?.images[img]?.buildkit);
const pullRatio = (img, phase = 'first') => {
  const r = extra.pull?.images[img];
  return medMs(r?.tsbuild?.[phase]) / medMs(r?.skopeo?.[phase]);
};
const runRatio = (net) => medMs(extra.run?.nets[net]?.tsbuild) / medMs(extra.run?.nets[net]?.podman);
// issue 17's goals (same run, medians, tsbuild / BuildKit unless said); a workload left out reads "not measured".
const workloads = Object.keys(W);
const nodeStartMs = median(extra.nodeStart?.bareMs ?? []);
const targets = [
  ['tiny cold', () => ratio('tiny', 'cold'), 0.6],
  ['ten-steps cold', () => ratio('ten-steps', 'cold'), 0.3],
  ['many-files cold', () => ratio('many-files', 'cold'), 0.3],
  ['big-file cold', () => ratio('big-file', 'cold'), 0.7],
  ['debian cold', () => ratio('debian', 'cold'), 0.9],
  ...workloads.map((w) => [`${w} one-change`, () => ratio(w, 'change'), 0.5]),
  ...workloads.map((w) => [`${w} no-op`, () => ratio(w, 'noop'), w === 'many-files' ? 0.2 : 0.8]),
  // "no-op ≤ Node's start + 30 ms", everywhere: a row per workload, so that one workload's miss does not hide
  // whether the others meet it.
  ...workloads.map((w) => [
    `${w} no-op beyond \`node -e 0\` (bare: NODE_EXTRA_CA_CERTS unset) (ms)`,
    () => M(w, 'tsbuild', 'noop') - nodeStartMs,
    30,
    'abs',
  ]),
  [
    'peak RSS of tsbuild, every workload (MB)',
    () => max(workloads.map((w) => peakRss(w, 'tsbuild'))) / 1024,
    150,
    'abs',
  ],
  ['per-RUN overhead vs runc (sandbox / runc+overlay, `true`)', () => sub.sandbox?.ratio ?? NaN, 0.3],
  ['push vs `skopeo copy`, `tsbuild push` CLI, 4 × 8 MiB', () => sub.push?.cli?.small?.first?.ratio ?? NaN, 1.0],
  [
    'push vs `skopeo copy`, `tsbuild push` CLI, many-files image',
    () => sub.push?.cli?.['many-files']?.first?.ratio ?? NaN,
    1.0,
  ],
  [
    'push vs `skopeo copy`, `tsbuild push` CLI, big-file image',
    () => sub.push?.cli?.['big-file']?.first?.ratio ?? NaN,
    1.0,
  ],
  ['push vs `skopeo copy`, registry client in-process, 4 × 8 MiB', () => sub.push?.ratio ?? NaN, 1.0],
  ['build + push for CI, many-files (tsbuild / BuildKit + docker push)', () => ciRatio('many-files'), 0.4],
  ['build + push for CI, big-file (tsbuild / BuildKit + docker push)', () => ciRatio('big-file'), 0.4],
  ['pull, many-files, first (tsbuild / skopeo copy)', () => pullRatio('many-files'), 1.0],
  ['pull, big-file, first (tsbuild / skopeo copy)', () => pullRatio('big-file'), 1.0],
  ['pull, many-files, repeated (tsbuild / skopeo copy)', () => pullRatio('many-files', 'repeat'), 1.0],
  ['pull, big-file, repeated (tsbuild / skopeo copy)', () => pullRatio('big-file', 'repeat'), 1.0],
  ['`run --rm IMG true`, default network (tsbuild / podman)', () => runRatio('default'), 0.5],
  [
    'repeated push through the CLI, slowest image (s)',
    () => Math.max(...Object.values(sub.push?.cli ?? {}).map((x) => x.repeat?.s ?? NaN)),
    0.3,
    'abs',
  ],
];
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const bnames = builders.map((b) => b.name);
const L = [];
L.push('# tsbuild benchmark results', '');
L.push(
  `Generated by \`node bench/run.mjs${argv.length ? ' ' + argv.join(' ') : ''}\` on ` +
    `${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, ` +
    `${runs} run(s) per cell, in ${((Date.now() - started) / 60000).toFixed(1)} ` +
    `min.${quick ? ' **Quick mode: one run, small data — a smoke test, not a measurement.**' : ''}`,
  '',
);
L.push('## Machine', '');
const mem = (os.totalmem() / 2 ** 30).toFixed(1);
const kernel = (await sh('uname', ['-r'])).stdout.trim();
L.push(
  `- ${os.cpus().length} cores (\`nproc\`: ${(await sh('nproc', [])).stdout.trim()}), ` +
    `${os.cpus()[0]?.model ?? ''}; ${mem} GiB memory; kernel ${kernel}; store on ` +
    `${(await sh('findmnt', ['-no', 'FSTYPE', '-T', work], { ok: true })).stdout.trim()}`,
);
L.push(
  `- node ${process.version}; tsbuild ${versions.tsbuild ?? 'n/a'} (git); docker ${versions.buildkit ?? 'n/a'} ` +
    `(Debian docker.io, BuildKit via DOCKER_BUILDKIT=1); ${versions.buildah ?? 'buildah n/a'} (overlay storage, ` +
    `\`--layers\`)`,
);
L.push(
  `- load average (1/5/15 min) at the start ${loadStart.map((x) => x.toFixed(1)).join(' / ')}, at the end ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' / ')} — other work shares this 2-core machine; interleaving spreads its noise over all builders alike`,
);
L.push('');
L.push('## Targets (ratio tsbuild / BuildKit of the medians, unless noted)', '');
L.push('| target | goal | measured | |', '|---|---|---|---|');
for (const [what, fn, goal] of targets) {
  const v = fn();
  L.push(
    `| ${what} | ≤ ${goal}${what.includes('RSS') ? ' (<)' : ''} | ${f2(v)} | ` +
      `${Number.isFinite(v) ? (v <= goal ? 'met' : '**missed**') : 'not measured'} |`,
  );
}
L.push('');
L.push('## Build times', '', 'Seconds: median [min–max] of the runs. Ratios compare medians.', '');
for (const name of names) {
  L.push(`### ${name}`, '');
  const nc = bnames.includes('tsbuild-nocomp');
  L.push(
    `| phase | ${bnames.join(' | ')} | tsbuild / BuildKit |${nc ? ' tsbuild-nocomp / BuildKit |' : ''} tsbuild / ` +
      `Buildah |`,
    `|---|${bnames.map(() => '---|').join('')}---|${nc ? '---|' : ''}---|`,
  );
  for (const [p, label] of [
    ['cold', 'cold'],
    ['noop', 'no-op'],
    ['change', `one-change (\`${W[name].change}\`)`],
  ]) {
    const cells = bnames.map((b) => {
      const xs = (results[name]?.[b]?.[p] ?? []).map((x) => x.ms);
      return xs.length ? `${fmtS(median(xs))} [${fmtS(min(xs))}–${fmtS(max(xs))}]` : 'n/a';
    });
    const ncr = nc ? ` ${f2(M(name, 'tsbuild-nocomp', p) / M(name, 'buildkit', p))} |` : '';
    L.push(
      `| ${label} | ${cells.join(' | ')} | ${f2(ratio(name, p))} |${ncr} ` +
        `${f2(M(name, 'tsbuild', p) / M(name, 'buildah', p))} |`,
    );
  }
  const pad = nc ? ' | | |' : ' | |';
  L.push(`| peak RSS, MB | ${bnames.map((b) => fmtMB(peakRss(name, b))).join(' | ')} |${pad}`);
  const mb = (b) => (Number.isFinite(sizes[name]?.[b]) ? (sizes[name][b] / 1e6).toFixed(1) : 'n/a');
  L.push(`| image size, MB | ${bnames.map(mb).join(' | ')} |${pad}`);
  L.push('');
}
L.push(
  'Peak RSS: the largest single process over the three phases — tsbuild and buildah: `/usr/bin/time -f %M` of the ' +
    'CLI (the max over its process tree); ' +
    'BuildKit: the max of the docker client (`/usr/bin/time`) and the daemons (dockerd, which embeds BuildKit, and ' +
    'its containerd), read as VmHWM after resetting it with `/proc/PID/clear_refs` before each build.',
  '',
);
L.push(
  'Image size: ' +
    Object.entries(SIZE)
      .map(([b, s]) => `${b}: ${s}`)
      .join('; ') +
    '.',
  '',
);
if (Object.keys(extra).length) {
  L.push('## Build + push, how cost grows, pull and run', '');
  if (extra.ciPush) L.push(...reportCiPush(extra.ciPush, missing));
  // The charts beside the report, linked relatively: charts/ for RESULTS.md, <name>-charts/ for any other file.
  const base = outFile.split('/').pop().replace(/\.md$/, '');
  const chartsRel = base === 'RESULTS' ? 'charts' : `${base}-charts`;
  const chartsDir = join(dirname(outFile), chartsRel);
  if (extra.scale) L.push(...reportScale(extra.scale, { chartsDir, chartsRel, missing }));
  if (extra.pull) L.push(...reportPull(extra.pull, missing));
  if (extra.run) L.push(...reportRun(extra.run, missing));
}
if (Object.keys(missing).length) {
  const what = Object.entries(missing).map(([t, m]) => `${t} (no \`${m}\`)`);
  L.push(`Not installed here (reported as such): ${what.join(', ')}.`, '');
}
if (failures.length) {
  L.push('## Failed builds', '', 'Counted as missing in the medians above.', '', '```', ...failures, '```', '');
}
if (limitRows.length) {
  L.push(
    '## Limits of this machine on the same data',
    '',
    '| operation | data | median s | min s |',
    '|---|---|---|---|',
  );
  for (const r of limitRows) L.push(`| ${r.what} | ${r.data} | ${fmtS(r.median)} | ${fmtS(r.min)} |`);
  L.push('');
}
if (doSub) {
  L.push(
    '## Sub-benches',
    '',
    '### Per-RUN sandbox overhead (`node bench/sandbox-overhead.mjs`)',
    '',
    '```',
    sub.sandbox?.text ?? 'not run',
    '```',
    '',
  );
  L.push('### Push (`node bench/push-bench.mjs`)', '', '```', sub.push?.text ?? 'not run', '```', '');
  L.push('### Layer creation (`node bench/layer-bench.mjs`)', '', '```', sub.layer?.text ?? 'not run', '```', '');
}
L.push('## Method', '');
L.push(
  `- Workloads: \`bench/workloads/<name>/Dockerfile\`; contexts are assembled in \`bench/work/ctx/<name>\` ` +
    `(workload files + generated data, hard-linked); every file has mtime ${MTIME}. ` +
    `many-files data: \`node bench/gen-data.mjs${quick ? ' --quick' : ''}\` (seeded PRNG, offline); debian base: ` +
    `\`bash bench/gen-debian.sh\` (debootstrap minbase bookworm, cached in bench/data/). big-file: SIZE_MB=${bigMB}.`,
);
L.push(
  '- Bases: each builder builds `bench/busybox:base` from `fixtures/busybox` (FROM scratch + ADD rootfs.tar) and ' +
    '`bench/debian:base` from `workloads/debian/base.Dockerfile` + the cached rootfs tar, before any timing.',
);
L.push(
  '- Per workload, per run, builders in turn, the order rotated every run (A B C, B C A, C A B, …): flush the ' +
    'build cache (untimed) and `sync` (untimed), cold build, no-op rebuild, append a line to the one file read by ' +
    'a late step, one-change rebuild; then the file is restored.',
);
L.push(
  syncEach
    ? '- Every timed build ends with `sync`, timed as part of it, for every builder: each pays for writing back ' +
        'its own data (tsbuild mounts RUN overlays volatile and leaves its page cache dirty; BuildKit syncs at each ' +
        'overlay unmount), rather than leaving it to whichever builder runs next.'
    : '- `--no-sync`: no build ends with a `sync`; dirty data left by one builder may be written back during the ' +
        'next one.',
);
L.push(
  '- Same work: tsbuild stores new layers uncompressed and compresses them when the image leaves the store ' +
    '(push, outputs, save), as BuildKit inside dockerd keeps them uncompressed and compresses at `docker push`, and ' +
    'Buildah likewise. `tsbuild-nocomp` (`--compression none`) differs only in what a push or an output sends.',
);
L.push(
  "- Same help for both: tsbuild keeps per-run sandbox state on a tmpfs and marks its scratch dir with ext4's " +
    "top-directory flag; dockerd's exec-root is on a tmpfs too (" +
    tmpfsRunNote() +
    ') and its `overlay2` dir gets `chattr +T`.',
);
L.push(
  '- Network: RUN steps of every builder run in a network namespace of their own (tsbuild: its default private ' +
    "network; BuildKit: dockerd's bridge network on a bridge of the harness's own; Buildah: its default).",
);
L.push(
  '- Flush: ' +
    Object.entries(FLUSH)
      .map(([b, s]) => `${b}: ${s}`)
      .join('; ') +
    '.',
);
L.push(
  '- BuildKit runs in a dockerd the harness starts itself (`--data-root bench/work/docker/data`, a private socket ' +
    'and exec-root, `--iptables=false --ip-masq=false --ip-forward=false`, `--bridge tsbbench<random>` — a bridge ' +
    "of its own, made and removed by the test kit's helper, so another dockerd on the machine cannot take " +
    'docker0 away mid-run and this one never touches docker0) and stops at the end.',
);
L.push('- Times are wall-clock from spawning the CLI to its exit (`docker build` waits for the daemon).');
if (extra.ciPush) {
  const how = Object.entries(PUSH).map(([b, s]) => `${b}: ${s}`);
  L.push(`- Build + push: ${how.join('; ')}. tsbuild-nocomp is left out: CI pushes compressed layers.`);
}
L.push('');
L.push(
  'Exact build commands ($ROOT = bench/work/<builder>/root for tsbuild and tsbuild-nocomp, ' +
    '$SOCK = bench/work/docker/docker.sock, $BROOT = bench/work/buildah/storage, ' +
    '$BRUN = /run/tsb-bench-buildah-<tag of bench/work>):',
  '',
  '```',
);
for (const name of names) for (const b of bnames) L.push(commands[name][b]);
L.push('```', '');
// Keep the hand-written analysis.
const WHERE = '## Where the time goes';
const prev = existsSync(outFile) ? readFileSync(outFile, 'utf8') : '';
const at = prev.indexOf(WHERE);
L.push(at >= 0 ? prev.slice(at).trimEnd() : `${WHERE}\n\n(to be written after profiling)`, '');
writeFileSync(outFile, L.join('\n'));
log(`wrote ${outFile}`);
