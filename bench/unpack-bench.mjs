#!/usr/bin/env node
// Layer unpack throughput: unpackLayer (overlay form) of a 20,000-file layer (200 directories
// with 7 subdirectories each, file sizes 0..4 KB from a fixed sequence), uncompressed so the
// numbers are the file-system work alone. Prints the median of RUNS runs (default 5), wall
// clock and CPU (user + system: steadier on a shared machine), and
// `tar -x` of the same tar for scale. Every run unpacks into a fresh directory of a work dir
// carrying ext4's top-directory flag, as the store's tmp/ does (see sys/topdir.ts: without it,
// a tree created right after another was deleted pays ~1 ms per file in the inode allocator),
// and the trees are deleted only at the end. UNPACK_BENCH_DIST=DIR measures another build's
// dist/src (e.g. one of the previous commit) on the same data. UNPACK_BENCH_TMP=DIR puts the
// trees elsewhere: a tmpfs (/dev/shm) leaves out the disk, whose noise on a shared machine
// swamps the unpacker's own cost.
// Usage: pnpm run build && node bench/unpack-bench.mjs [RUNS]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = process.env.UNPACK_BENCH_DIST || join(here, '..', 'packages', 'layerstore', 'dist', 'src');
const { unpackLayer, tarStream } = await import(join(dist, 'layer', 'index.js'));
const { markTopDir } = await import(join(dist, 'sys', 'topdir.js'));
const runs = Number(process.argv[2] ?? 5);

function* entries() {
  for (let d = 0; d < 200; d++) {
    const top = `d${String(d).padStart(3, '0')}`;
    yield { path: top, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 1_600_000_000 };
    for (let s = 0; s < 7; s++)
      yield { path: `${top}/s${s}`, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 1_600_000_000 };
  }
  for (let i = 0; i < 20000; i++) {
    const content = createHash('sha256')
      .update(String(i))
      .digest()
      .toString('hex')
      .repeat(64)
      .slice(0, (i * 7919) % 4096);
    const path = `d${String(i % 200).padStart(3, '0')}/s${i % 7}/f${i}.dat`;
    yield {
      path,
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: 1_600_000_000,
      size: content.length,
      open: () => Readable.from([Buffer.from(content)]),
    };
  }
}

const chunks = [];
for await (const b of tarStream(entries())) chunks.push(Buffer.from(b));
const tar = Buffer.concat(chunks);
const work = mkdtempSync(join(process.env.UNPACK_BENCH_TMP || tmpdir(), 'unpack-bench-'));
markTopDir(work);
const tarFile = join(work, 'layer.tar');
execFileSync('sh', ['-c', `cat > ${tarFile}`], { input: tar });

const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
const ours = [],
  gnu = [],
  cpu = [];
for (let r = 0; r < runs; r++) {
  const dir = join(work, `u${r}`);
  mkdirSync(dir);
  const t0 = performance.now(),
    c0 = process.cpuUsage();
  await unpackLayer(Readable.from([tar]), 'application/vnd.oci.image.layer.v1.tar', dir);
  ours.push((performance.now() - t0) / 1000);
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1e6);
  const g = join(work, `g${r}`);
  mkdirSync(g);
  const t1 = performance.now();
  execFileSync('tar', ['-x', '-f', tarFile, '-C', g, '--same-owner', '--xattrs']);
  gnu.push((performance.now() - t1) / 1000);
}
rmSync(work, { recursive: true, force: true });
console.log(
  JSON.stringify({
    files: 20000,
    dirs: 1600,
    tarMB: +(tar.length / 1e6).toFixed(1),
    unpackSeconds: ours.map((s) => +s.toFixed(2)),
    median: +median(ours).toFixed(2),
    cpuSeconds: +median(cpu).toFixed(2),
    tarX: +median(gnu).toFixed(2),
  }),
);
