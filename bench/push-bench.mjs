#!/usr/bin/env node
// Push benchmark: tsbuild vs `skopeo copy`, the same image from the same store, into Debian's
// docker-registry on 127.0.0.1 (temp storage).
//
// 1. The layerstore's registry client in-process (remote.push) on a generated image of N layers x M MiB:
//    the `| first |` and `| repeat |` rows that bench/run.mjs reads for its push targets.
// 2. `tsbuild push REF` through the CLI, process start included, as a user runs it, for
//      small       that generated image,
//      many-files  FROM scratch + COPY of bench/data's 20,000-file node_modules (one ~62 MiB gzip layer),
//      big-file    FROM scratch + COPY of big-file's data (one ~250 MiB gzip layer),
//    built by tsbuild (layers stored uncompressed), then compressed into the store and tagged so (as a
//    first push or export leaves them), so that both tools push the same gzip blobs; what compressing
//    at push time costs is measured by run.mjs's ci-push,
//    each against `skopeo copy oci:STORE:REF docker://…` (the tsbuild store is an OCI layout).
//
// Phases: first = a new image into a registry that has none of it; repeat = the same push again
// (HEADs and the manifest, no blob bytes: checked); other repository = the same image under another
// name in the same registry (mounts). Every `first` push goes to a registry started for that run
// and that tool: skopeo remembers where it pushed blobs (/var/lib/containers/cache) and tsbuild
// too (STORE/remote/locations.json), and either would otherwise mount from an earlier run's
// repository instead of uploading. The two tools alternate going first.
//
//   node bench/push-bench.mjs [--runs R] [--images small,many-files,big-file] [--layers N] [--mib M] [--concurrency C]
// Needs `pnpm run build` first (uses the built dist/ and the CLI bundle).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ensureManyFiles } from './gen-data.mjs';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'packages/layerstore/dist');
const { Store, remote, compressedImage } = await import(path.join(dist, 'src/index.js'));
const { startRegistry } = await import(path.join(root, 'packages/testkit/dist/src/registry.js'));
const { makeImage, newBlobStore } = await import(path.join(dist, 'test/helpers/registry-image.js'));
// The command as users run it (the /bin/sh launcher: it keeps NODE_EXTRA_CA_CERTS out of Node's start).
const cli = path.join(root, 'packages/builder/bin/tsbuild');

const argv = process.argv.slice(2);
const arg = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const layers = Number(arg('layers', 4));
const mib = Number(arg('mib', 8));
const runs = Number(arg('runs', 3));
const concurrency = arg('concurrency') === undefined ? undefined : Number(arg('concurrency'));
const images = arg('images', 'small,many-files,big-file').split(',');
const known = ['small', 'many-files', 'big-file'];
for (const i of images) if (!known.includes(i)) throw new Error(`--images: "${i}" is not one of ${known.join(', ')}`);
const log = (m) => process.stderr.write(`push-bench: ${m}\n`);

/**
 * Run a command under /usr/bin/time: wall ms (measured here), user+sys ms and peak RSS of the process tree's largest.
 */
function run(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn('/usr/bin/time', ['-f', '@@time %U %S %M', cmd, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => {
      out += b;
    });
    child.stderr.on('data', (b) => {
      err += b;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t;
      const m = /@@time ([\d.]+) ([\d.]+) (\d+)\s*$/.exec(err);
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${err.slice(-3000)}`));
      resolve({
        ms,
        cpuMs: m ? (Number(m[1]) + Number(m[2])) * 1000 : NaN,
        rssKB: m ? Number(m[3]) : NaN,
        stdout: out,
        stderr: m ? err.slice(0, m.index) : err,
      });
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mibOf = (bytes) => bytes / 1024 / 1024;

// --- the store: every image, tagged bench/<name>:1 --------------------------------------------
const work = mkdtempSync(path.join(os.tmpdir(), 'tsbuild-push-bench-'));
const storeRoot = path.join(work, 'store');
const registries = [];
const fresh = async () => {
  const r = await startRegistry();
  registries.push(r);
  return r;
};
const stopAll = async () => {
  for (const r of registries.splice(0)) await r.stop();
};

try {
  mkdirSync(storeRoot);
  const { blobs: genBlobs, root: genRoot } = newBlobStore();
  const gen = await makeImage(
    genBlobs,
    Array.from({ length: layers }, () => mib * 1024 * 1024),
    7,
  );
  // The generated blobs go into the bench store by rename (same filesystem: both under tmp).
  let store = await Store.open(storeRoot);
  const { renameSync, readdirSync } = await import('node:fs');
  for (const f of readdirSync(path.join(genRoot, 'blobs', 'sha256')))
    renameSync(path.join(genRoot, 'blobs', 'sha256', f), path.join(storeRoot, 'blobs', 'sha256', f));
  rmSync(genRoot, { recursive: true, force: true });
  await store.images.tag('bench/small:1', await store.images.get(gen.manifestDigest));

  const described = {
    small: `${layers} × ${mib} MiB (random, ${layers} layers, ${mibOf(gen.totalSize).toFixed(1)} MiB)`,
  };
  const tsbuild = (args, env = {}) => run(cli, args, { TSBUILD_ROOT: storeRoot, ...env });
  const build = async (name, context, dockerfile) => {
    const df = path.join(work, `${name}.Dockerfile`);
    writeFileSync(df, dockerfile);
    const t = performance.now();
    await tsbuild(['build', '-q', '-t', `bench/${name}:1`, '-f', df, context]);
    log(`built ${name} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  };
  if (images.includes('many-files')) {
    const nm = ensureManyFiles(false, log);
    await build('many-files', path.dirname(nm), 'FROM scratch\nCOPY node_modules/ /app/node_modules/\n');
  }
  if (images.includes('big-file')) {
    // big-file's data, made by the same shell loop as its RUN (bench/workloads/big-file), SIZE_MB=500.
    const ctx = path.join(work, 'big-file');
    mkdirSync(ctx);
    await run('bash', [
      '-c',
      `cd ${ctx} && i=0; while [ $i -lt 225 ]; do head -c 1048576 /dev/urandom; yes 'compressible text 0123456789 ` +
        `abcdefghij' | head -c 1048576; i=$((i+1)); done > big.bin && ` +
        `mkdir parts && for p in 1 2 3 4 5; do head -c 5242880 /dev/urandom > parts/p$p.bin; yes "part $p" | head ` +
        `-c 5242880 >> parts/p$p.bin; done`,
    ]);
    await build('big-file', ctx, 'FROM scratch\nCOPY . /data/\n');
    rmSync(ctx, { recursive: true, force: true });
  }
  store = await Store.open(storeRoot);
  const image = { small: await store.images.get('bench/small:1') };
  for (const name of known.filter((n) => images.includes(n))) {
    // Deferred compression: the build stored the layer plain; compress it now, untimed (see the header).
    const img = (await compressedImage(store, await store.images.get(`bench/${name}:1`), 'gzip')).image;
    await store.images.tag(`bench/${name}:1`, img);
    const size = img.layers.reduce((a, l) => a + l.size, 0);
    image[name] = img;
    if (name === 'many-files')
      described[name] = `many-files (20,000 files, 1 layer, ${mibOf(size).toFixed(1)} MiB gzip)`;
    if (name === 'big-file') described[name] = `big-file (500 MB of data, 1 layer, ${mibOf(size).toFixed(1)} MiB gzip)`;
  }
  const tagAs = async (name, ref) => store.images.tag(ref, image[name]);
  const skopeo = (name, dest) =>
    run('skopeo', [
      '--insecure-policy',
      'copy',
      '-q',
      '--dest-tls-verify=false',
      `oci:${storeRoot}:docker.io/bench/${name}:1`,
      `docker://${dest}`,
    ]);
  const pushed = (r) => {
    const m = /uploaded (\d+) blobs \((\d+) bytes\), mounted (\d+)/.exec(r.stderr);
    if (!m) throw new Error(`tsbuild push printed no summary:\n${r.stderr}`);
    return { blobs: Number(m[1]), bytes: Number(m[2]), mounted: Number(m[3]) };
  };

  // Warm both tools' binaries and libraries into the page cache, untimed.
  {
    const r = await fresh();
    await tagAs('small', `${r.host}/warm/x:1`);
    await tsbuild(['push', '--progress', 'plain', `${r.host}/warm/x:1`]);
    await skopeo('small', `${r.host}/warm/y:1`);
    await store.tags.delete(`${r.host}/warm/x:1`);
    await stopAll();
  }

  // --- 1. in-process ----------------------------------------------------------------------------
  const inproc = { first: { ours: [], theirs: [] }, repeat: { ours: [], theirs: [] } };
  const opts = { credentials: remote.noCredentials, concurrency };
  for (let r = 0; r < runs; r++) {
    const regOurs = await fresh();
    const regTheirs = await fresh();
    const refOurs = `${regOurs.host}/bench/ours:1`;
    const time = async (fn) => {
      const t = performance.now();
      const v = await fn();
      return { ms: performance.now() - t, v };
    };
    const ours = () => time(() => remote.push(store.blobs, { manifestDigest: gen.manifestDigest }, refOurs, opts));
    const theirs = () => skopeo('small', `${regTheirs.host}/bench/skopeo:1`);
    if (r % 2 === 0) {
      inproc.first.ours.push((await ours()).ms);
      inproc.first.theirs.push((await theirs()).ms);
    } else {
      inproc.first.theirs.push((await theirs()).ms);
      inproc.first.ours.push((await ours()).ms);
    }
    const again = await ours();
    if (again.v.stats.bytesUploaded !== 0) throw new Error('repeated push uploaded bytes');
    inproc.repeat.ours.push(again.ms);
    inproc.repeat.theirs.push((await theirs()).ms);
    await stopAll();
  }

  // --- 2. the CLI ----------------------------------------------------------------------------------
  const phases = ['first', 'repeat', 'other repository'];
  const rows = {};
  for (const name of known.filter((n) => images.includes(n))) {
    rows[name] = Object.fromEntries(
      phases.map((p) => [p, { ours: [], theirs: [], oursCpu: [], theirsCpu: [], oursRss: [] }]),
    );
    for (let r = 0; r < runs; r++) {
      const regOurs = await fresh();
      const regTheirs = await fresh();
      const refs = { first: `${regOurs.host}/bench/x:1`, 'other repository': `${regOurs.host}/bench/other:1` };
      for (const ref of Object.values(refs)) await tagAs(name, ref);
      // no mounts from earlier runs' registries
      rmSync(path.join(storeRoot, 'remote'), { recursive: true, force: true });
      const ours = async (phase) => {
        const res = await tsbuild(['push', '--progress', 'plain', refs[phase] ?? refs.first]);
        const s = pushed(res);
        if (phase === 'repeat' && s.bytes !== 0) throw new Error(`repeated push of ${name} uploaded ${s.bytes} bytes`);
        if (phase === 'other repository' && s.bytes !== 0)
          throw new Error(`push of ${name} to another repository uploaded ${s.bytes} bytes instead of mounting`);
        const row = rows[name][phase];
        row.ours.push(res.ms);
        row.oursCpu.push(res.cpuMs);
        row.oursRss.push(res.rssKB);
      };
      const theirs = async (phase) => {
        const res = await skopeo(
          name,
          phase === 'other repository' ? `${regTheirs.host}/bench/other:1` : `${regTheirs.host}/bench/x:1`,
        );
        const row = rows[name][phase];
        row.theirs.push(res.ms);
        row.theirsCpu.push(res.cpuMs);
      };
      for (const phase of phases) {
        if (r % 2 === 0) {
          await ours(phase);
          await theirs(phase);
        } else {
          await theirs(phase);
          await ours(phase);
        }
      }
      for (const ref of Object.values(refs)) await store.tags.delete(ref);
      await stopAll();
      log(`${name}: run ${r + 1}/${runs}`);
    }
  }

  // --- report ----------------------------------------------------------------------------------------
  const fmt = (ms) => `${ms.toFixed(0)} ms`;
  const secs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
  const spread = (xs) => (xs.length > 1 ? ` [${secs(Math.min(...xs))}–${secs(Math.max(...xs))}]` : '');
  const mb = mibOf(gen.totalSize);
  console.log(
    `image: ${layers} layers x ${mib} MiB (random, gzip level 1), ${mb.toFixed(1)} MiB in all; ${runs} runs, medians`,
  );
  console.log('In-process: the layerstore client (remote.push) vs the skopeo CLI; a fresh registry per run for each.');
  console.log('| push | tsbuild | skopeo copy | tsbuild / skopeo |');
  console.log('|---|---|---|---|');
  for (const k of ['first', 'repeat']) {
    const a = median(inproc[k].ours);
    const b = median(inproc[k].theirs);
    console.log(
      `| ${k} | ${fmt(a)}${k === 'first' ? ` (${(mb / (a / 1000)).toFixed(0)} MiB/s)` : ''} | ${fmt(b)} | ` +
        `${(a / b).toFixed(2)} |`,
    );
  }
  console.log('');
  console.log(
    `\`tsbuild push --progress plain REF\` (process start included) vs \`skopeo copy oci:STORE:REF docker://…\`; ` +
      `${runs} runs, medians [min–max]; CPU = user+sys of the process`,
  );
  console.log(
    '| image | push | tsbuild push | skopeo copy | tsbuild / skopeo | CPU tsbuild / skopeo | tsbuild peak RSS |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const name of Object.keys(rows)) {
    for (const phase of phases) {
      const x = rows[name][phase];
      const a = median(x.ours);
      const b = median(x.theirs);
      console.log(
        `| ${phase === 'first' ? described[name] : ''} | ${phase} | ${secs(a)}${spread(x.ours)} | ` +
          `${secs(b)}${spread(x.theirs)} | ${(a / b).toFixed(2)} | ${secs(median(x.oursCpu))} / ` +
          `${secs(median(x.theirsCpu))} | ${(median(x.oursRss) / 1024).toFixed(0)} MB |`,
      );
    }
  }
} finally {
  await stopAll();
  rmSync(work, { recursive: true, force: true });
}
