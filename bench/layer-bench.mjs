#!/usr/bin/env node
// Layer creation throughput: tsbuild's writeLayer against `tar -c | sha256sum` and
// `tar -c | gzip -1` on the same data, for a 20,000-file / 150 MB tree, one 500 MB file of mixed
// content, and one 500 MB file shaped like the big-file workload's (1 MiB random, 1 MiB text,
// alternating: gzip stores the random chunks). Data is generated deterministically into
// bench/data/ (gitignored; LAYER_BENCH_DATA=DIR to use another). Peak RSS is each measured
// process's VmHWM. Usage: pnpm exec tsc -b packages/layerstore && node bench/layer-bench.mjs
import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const data = process.env.LAYER_BENCH_DATA || join(here, 'data');
const MiB = 1 << 20;

/** Deterministic bytes: AES-128-CTR keystream under a fixed key. */
function keystream(seed, n) {
  const key = Buffer.alloc(16, seed & 0xff),
    iv = Buffer.alloc(16);
  iv.writeUInt32BE(seed >>> 0, 0);
  return createCipheriv('aes-128-ctr', key, iv).update(Buffer.alloc(n));
}

const WORDS =
  'the layer store writes tar streams with sha256 digests and gzip members for every image build cache'.split(' ');
/** Mixed content: a third incompressible, a third hex text (~2:1), a third word text (very compressible). */
function mixed(seed, n) {
  const kind = seed % 3;
  if (kind === 0) return keystream(seed, n);
  if (kind === 1) return Buffer.from(keystream(seed, Math.ceil(n / 2)).toString('hex')).subarray(0, n);
  const r = keystream(seed, n);
  const out = Buffer.alloc(n);
  let o = 0,
    i = 0;
  while (o < n) {
    o += out.write(WORDS[r[i++ % n] % WORDS.length] + (r[i % n] & 7 ? ' ' : '\n'), o);
  }
  return out;
}

function generate() {
  const tree = join(data, 'tree'),
    big = join(data, 'big');
  if (!existsSync(join(data, '.done-tree'))) {
    rmSync(tree, { recursive: true, force: true });
    // 20,000 files in 200 directories, sizes from a fixed pseudo-random sequence averaging ~7.5 KB = 150 MB.
    const sizes = keystream(7, 20000 * 4);
    for (let i = 0; i < 20000; i++) {
      const d = join(tree, `d${String(i % 200).padStart(3, '0')}`, `s${i % 7}`);
      if (i < 1400) mkdirSync(d, { recursive: true });
      const size = sizes.readUInt32LE(i * 4) % 15000;
      writeFileSync(join(d, `f${i}.dat`), mixed(i, size));
    }
    writeFileSync(join(data, '.done-tree'), '');
  }
  if (!existsSync(join(data, '.done-big'))) {
    mkdirSync(big, { recursive: true });
    const fd = openSync(join(big, 'blob.bin'), 'w');
    for (let i = 0; i < 500; i++) writeSync(fd, mixed(1000 + i, MiB));
    closeSync(fd);
    writeFileSync(join(data, '.done-big'), '');
  }
  const halves = join(data, 'halves');
  if (!existsSync(join(data, '.done-halves'))) {
    mkdirSync(halves, { recursive: true });
    const fd = openSync(join(halves, 'big.bin'), 'w');
    const text = Buffer.alloc(MiB);
    for (let o = 0; o < MiB;) o += text.write('compressible text 0123456789 abcdefghij\n', o);
    for (let i = 0; i < 250; i++) {
      writeSync(fd, keystream(5000 + i, MiB));
      writeSync(fd, text);
    }
    closeSync(fd);
    writeFileSync(join(data, '.done-halves'), '');
  }
  return { tree, big, halves };
}

function vmhwm() {
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
}

// Child mode: one writeLayer run, prints {seconds, rss, size}.
if (process.argv[2] === '--child') {
  const [, , , dir, compression] = process.argv;
  const dist = join(here, '..', 'packages', 'layerstore', 'dist');
  const { writeLayer } = await import(join(dist, 'src', 'layer', 'index.js'));
  const { TempBlobs } = await import(join(dist, 'test', 'helpers', 'temp-blobs.js'));
  const blobs = new TempBlobs(join(data, 'blobs-' + process.pid));
  const t0 = performance.now();
  const layer = await writeLayer(blobs, dir, { compression });
  const seconds = (performance.now() - t0) / 1000;
  await blobs.cleanup();
  console.log(JSON.stringify({ seconds, rss: vmhwm(), size: layer.size }));
  process.exit(0);
}

function shellTime(cmd) {
  const t0 = performance.now();
  execFileSync('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
  return (performance.now() - t0) / 1000;
}

function ours(dir, compression) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, compression], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error('child failed');
  return JSON.parse(r.stdout);
}

const { tree, big, halves } = generate();
// warm the page cache
const warm = `cat ${big}/blob.bin ${halves}/big.bin > /dev/null; tar -c -C ${tree} . > /dev/null`;
execFileSync('sh', ['-c', warm]);
const rows = [];
for (const [name, dir, bytes] of [
  ['20,000 files / 150 MB', tree, Number(execFileSync('du', ['-sb', tree]).toString().split('\t')[0])],
  ['one 500 MB file', big, 500 * MiB],
  ['500 MB, half random', halves, 500 * MiB],
]) {
  const tarSha = shellTime(`tar -c -C ${dir} . | sha256sum > /dev/null`);
  const tarGzip = shellTime(`tar -c -C ${dir} . | gzip -1 > /dev/null`);
  const tarPigz = shellTime(`tar -c -C ${dir} . | pigz -1 > /dev/null`);
  for (const compression of ['none', 'gzip', 'zstd']) {
    const r = ours(dir, compression);
    rows.push({
      data: name,
      compression,
      seconds: r.seconds.toFixed(2),
      'MB/s': (bytes / 1e6 / r.seconds).toFixed(0),
      'vs tar|sha256sum': (r.seconds / tarSha).toFixed(2),
      'vs tar|gzip -1': (r.seconds / tarGzip).toFixed(2),
      'peak RSS MB': (r.rss / 1e6).toFixed(0),
      'blob MB': (r.size / 1e6).toFixed(1),
    });
  }
  rows.push({
    data: name,
    compression: 'baselines',
    seconds: `tar|sha256sum ${tarSha.toFixed(2)}`,
    'MB/s': '',
    'vs tar|sha256sum': '',
    'vs tar|gzip -1': `tar|gzip -1 ${tarGzip.toFixed(2)}`,
    'peak RSS MB': `tar|pigz -1 ${tarPigz.toFixed(2)}`,
    'blob MB': '',
  });
}
console.table(rows);
