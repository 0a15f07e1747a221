#!/usr/bin/env node
// Generates the large, uncommitted inputs of the workloads, deterministically and offline.
//
//   node bench/gen-data.mjs [--quick]        writes bench/data/many-files-<N>/node_modules (cached)
//
// many-files: a node_modules-shaped tree. Full: 20,000 files, ~150 MB; --quick: 2,000 files, ~15 MB.
// Shape: packages of 6-60 files (package.json, README.md, LICENSE, index.js, lib/**, some dist/*.min.js,
// a few binary *.node / *.wasm blobs), a quarter of them with a nested node_modules/ of their own.
// Text is drawn from a seeded PRNG (mulberry32) over a JS-ish vocabulary, so gzip/zstd ratios look like
// real source; binaries are PRNG bytes (incompressible). Same seed → byte-identical tree, same mtimes.
//
// Why not @npmcli/arborist: its tree building (buildIdealTree) needs package manifests from a registry,
// and loadVirtual() only echoes the package-lock we would have to generate ourselves; a seeded layout is
// offline, has no install step, and gives the same tree bytes on every machine.
import { mkdirSync, writeFileSync, existsSync, rmSync, renameSync, utimesSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
export const MTIME = 1700000000;

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'function return const let var if else for while switch case break continue new this class extends ' +
  'import export default from async await yield try catch finally throw typeof instanceof null undefined true false ' +
  'module exports require prototype length push map filter reduce options callback resolve reject promise buffer ' +
  'stream ' +
  'value key index result error data config path file name type string number object array emit listener handler ' +
  'parse format encode decode serialize request response headers status body cache token node util assert'
).split(' ');

/** A pool of JS-like text to slice file contents from (fast, and as compressible as source code). */
function textPool(rand, bytes) {
  const parts = [];
  let n = 0;
  while (n < bytes) {
    const indent = '  '.repeat(Math.floor(rand() * 4));
    let line = indent;
    const w = 3 + Math.floor(rand() * 9);
    for (let i = 0; i < w; i++)
      line += WORDS[Math.floor(rand() * WORDS.length)] + (rand() < 0.15 ? '(' : rand() < 0.1 ? ') {' : ' ');
    line += rand() < 0.3 ? ';\n' : '\n';
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join(''));
}

/** Builds the file list: [{ path, size, binary }] with sizes scaled to `totalBytes`. */
function plan(rand, files) {
  const list = [];
  let p = 0;
  const pkgName = (i) => `pkg-${String(i).padStart(4, '0')}`;
  const addPackage = (base, name) => {
    const dir = base ? `${base}/${name}` : name;
    const n = 6 + Math.floor(rand() * 55);
    list.push(
      { path: `${dir}/package.json`, kind: 'json', name },
      { path: `${dir}/README.md`, kind: 'text' },
      { path: `${dir}/LICENSE`, kind: 'text' },
      { path: `${dir}/index.js`, kind: 'text' },
    );
    for (let i = 4; i < n; i++) {
      const r = rand();
      const depth = Math.floor(rand() * 3);
      const sub = ['lib', 'lib/internal', 'lib/util', 'src', 'dist'].slice(0, 2 + depth)[
        Math.floor(rand() * (2 + depth))
      ];
      if (r < 0.02) list.push({ path: `${dir}/build/Release/binding-${i}.node`, kind: 'bin' });
      else if (r < 0.03) list.push({ path: `${dir}/dist/module-${i}.wasm`, kind: 'bin' });
      else if (r < 0.1) list.push({ path: `${dir}/dist/bundle-${i}.min.js`, kind: 'big' });
      else if (r < 0.25) list.push({ path: `${dir}/${sub}/types-${i}.d.ts`, kind: 'text' });
      else list.push({ path: `${dir}/${sub}/file-${i}.js`, kind: 'text' });
    }
  };
  while (list.length < files) {
    const name = pkgName(p++);
    addPackage('', name); // paths are relative to the node_modules directory itself
    if (rand() < 0.25) {
      const k = 1 + Math.floor(rand() * 3);
      for (let j = 0; j < k && list.length < files; j++) addPackage(`${name}/node_modules`, `${name}-dep-${j}`);
    }
  }
  list.length = files;
  return list;
}

export function generateManyFiles({ files, totalMB, seed = 42, out }) {
  const rand = mulberry32(seed);
  const list = plan(rand, files);
  // Weights: a log-normal-ish spread; 'big' and 'bin' files weigh more, as minified bundles and binaries do.
  const weight = list.map((f) => {
    const base = Math.exp(rand() * 3.2);
    return f.kind === 'big' ? base * 12 : f.kind === 'bin' ? base * 10 : f.kind === 'json' ? 0.3 : base;
  });
  const wsum = weight.reduce((a, b) => a + b, 0);
  const total = totalMB * 1024 * 1024;
  const pool = textPool(rand, 4 * 1024 * 1024);
  const tmp = `${out}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  const dirs = new Set();
  const hash = createHash('sha256');
  let bytes = 0;
  for (let i = 0; i < list.length; i++) {
    const f = list[i];
    const size = Math.max(64, Math.round((weight[i] / wsum) * total));
    const full = join(tmp, f.path);
    const d = dirname(full);
    if (!dirs.has(d)) {
      mkdirSync(d, { recursive: true });
      dirs.add(d);
    }
    let body;
    if (f.kind === 'json') {
      body = Buffer.from(
        JSON.stringify(
          {
            name: f.name,
            version: `1.${i % 17}.${i % 5}`,
            main: 'index.js',
            license: 'MIT',
            description: `generated package ${f.name}`,
          },
          null,
          2,
        ) + '\n',
      );
    } else if (f.kind === 'bin') {
      body = Buffer.alloc(size);
      for (let j = 0; j + 4 <= size; j += 4) body.writeUInt32LE((rand() * 4294967296) >>> 0, j);
    } else {
      const head = Buffer.from(`// ${f.path} #${i}\n`);
      const off = Math.floor(rand() * (pool.length - size - 1));
      body = Buffer.concat([head, pool.subarray(Math.max(0, off), Math.max(0, off) + Math.max(0, size - head.length))]);
    }
    writeFileSync(full, body);
    hash.update(f.path).update(body);
    bytes += body.length;
  }
  // Fixed mtimes everywhere, so every builder and every run sees the same metadata.
  const touch = (p) => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      const q = join(p, e.name);
      if (e.isDirectory()) touch(q);
      utimesSync(q, MTIME, MTIME);
    }
  };
  touch(tmp);
  utimesSync(tmp, MTIME, MTIME);
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  return { files: list.length, bytes, sha256: hash.digest('hex') };
}

export function manyFilesDir(quick) {
  const files = quick ? 2000 : 20000;
  return { files, totalMB: quick ? 15 : 150, dir: join(here, 'data', `many-files-v2-${files}`) };
}

export function ensureManyFiles(quick, log = console.log) {
  const { files, totalMB, dir } = manyFilesDir(quick);
  const nm = join(dir, 'node_modules');
  if (existsSync(join(dir, 'DONE'))) return nm;
  mkdirSync(dir, { recursive: true });
  const t = performance.now();
  const r = generateManyFiles({ files, totalMB, out: nm });
  writeFileSync(join(dir, 'DONE'), JSON.stringify(r) + '\n');
  log(
    `gen-data: ${nm}: ${r.files} files, ${(r.bytes / 1048576).toFixed(1)} MiB, sha256 ${r.sha256.slice(0, 16)}… in ` +
      `${((performance.now() - t) / 1000).toFixed(1)}s`,
  );
  return nm;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  const nm = ensureManyFiles(quick);
  const count = (p) =>
    readdirSync(p, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? count(join(p, e.name)) : 1), 0);
  console.log(`${nm}: ${count(nm)} files, ${statSync(nm).isDirectory() ? 'ok' : 'missing'}`);
}
