// Interleaved A/B of a cold `tsbuild build`: each variant a tsbuild command (a built checkout's
// packages/builder/bin/tsbuild), each build on a fresh copy of the bench's template store
// (bench/work/tsbuild/template: the bases only; run the bench once first), then a timed `sync`; the order
// alternates every round. The stores are kept until the end and removed together: removing one between builds
// leaves thousands of just-freed inodes that ext4 passes over (`recently_deleted`) when the next build creates
// files, which made one and the same build's system time swing from 1 s to 6 s.
// On a filesystem that has no such effect (tmpfs), WORK=DIR REMOVE_EACH=1 puts the stores in DIR, each removed
// after its build. FLUSH=bench does what bench/run.mjs does instead: one store, removed just before each build
// (the previous build's), then the template copied, `sync`, 200 ms; with EXT4_IPG=N (the filesystem's inodes per
// block group) it also prints which share of the new store's inodes went to the block groups the removed store
// had held (where ext4 passes over just-freed inodes). TRACE=1 runs the builds with TSBUILD_TRACE=1 and prints
// the longest COPY (from "staged" to "copied").
// A variant's command may start with environment settings: LABEL=NAME=VALUE,NAME=VALUE:TSBUILD (e.g.
// TSBUILD_COPY_JOBS=1, the copier's threads). Prints median [min–max] wall, wall + sync, user and sys CPU of the
// process tree, peak RSS, and the load.
//   [TEMPLATE=STORE] [WORK=DIR] [REMOVE_EACH=1 | FLUSH=bench [EXT4_IPG=N]] [TRACE=1] \
//     node bench/experiments/cold-ab.mjs ROUNDS CTX LABEL=[ENV:]TSBUILD... [-- flags]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { abArgs, load1 } from '../lib/util.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const parsed = abArgs('cold-ab.mjs', '[NAME=VALUE,…:]TSBUILD');
const { rounds, ctx, extra } = parsed;
// LABEL=TSBUILD or LABEL=NAME=VALUE,…:TSBUILD (abArgs split each at every '=')
const variants = parsed.variants.map(([label, ...r]) => {
  const cmd = r.join('=');
  const colon = cmd.lastIndexOf(':');
  const env =
    colon < 0
      ? {}
      : Object.fromEntries(
          cmd
            .slice(0, colon)
            .split(',')
            .map((kv) => kv.split('=')),
        );
  return [label, colon < 0 ? cmd : cmd.slice(colon + 1), env];
});
// TEMPLATE: another template store (a checkout whose bench has run).
const template = process.env.TEMPLATE ?? join(repo, 'bench/work/tsbuild/template');
const work = mkdtempSync(join(process.env.WORK ?? tmpdir(), 'cold-ab-'));
const flushBench = process.env.FLUSH === 'bench';
const ipg = Number(process.env.EXT4_IPG ?? 0);
const trace = process.env.TRACE === '1';
// The block groups holding a tree's inodes (find's %i), counted per group.
const groupsOf = (dir) => {
  const out = spawnSync('find', [dir, '-printf', '%i\\n'], { encoding: 'utf8', maxBuffer: 1 << 30 }).stdout;
  const count = new Map();
  for (const line of out.split('\n')) {
    if (!line) continue;
    const g = Math.floor((Number(line) - 1) / ipg);
    count.set(g, (count.get(g) ?? 0) + 1);
  }
  return count;
};
// The longest span of a COPY in a TSBUILD_TRACE log: "[trace  Nms] STEP: staged" to "STEP: copied".
const longestCopy = (log) => {
  const staged = new Map();
  let most = NaN;
  for (const m of log.matchAll(/^\[trace +(\d+)ms\] (.*): (staged|copied)$/gm)) {
    if (m[3] === 'staged') staged.set(m[2], Number(m[1]));
    else if (staged.has(m[2])) most = Math.max(Number.isNaN(most) ? 0 : most, Number(m[1]) - staged.get(m[2]));
  }
  return most / 1000;
};
const res = Object.fromEntries(variants.map(([l]) => [l, []]));
const loads = [];
let n = 0;
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
try {
  if (flushBench) {
    // Untimed: a store for the first timed build to remove, as every one of the bench's cold builds removes one.
    const [, bin, venv] = variants[0];
    spawnSync('cp', ['-a', template, join(work, 'store')]);
    const env = { ...process.env, ...venv, TSBUILD_ROOT: join(work, 'store') };
    spawnSync(bin, ['build', '--progress=plain', ...extra, '-t', 'ab:cold', ctx], { env, stdio: 'ignore' });
  }
  for (let i = 0; i < Number(rounds); i++) {
    for (const [label, bin, venv] of i % 2 ? [...variants].reverse() : variants) {
      const root = join(work, flushBench ? 'store' : `store-${n}`);
      n++;
      let freed = null;
      if (flushBench && existsSync(root)) {
        if (ipg) freed = groupsOf(root);
        rmSync(root, { recursive: true, force: true });
      }
      spawnSync('cp', ['-a', template, root]);
      spawnSync('sync');
      if (flushBench) sleep(200);
      loads.push(load1());
      const args = ['-f', '%e %M %U %S', bin, 'build', '--progress=plain', ...extra, '-t', 'ab:cold', ctx];
      const env = { ...process.env, ...venv, TSBUILD_ROOT: root, ...(trace ? { TSBUILD_TRACE: '1' } : {}) };
      const r = spawnSync('/usr/bin/time', args, { env, encoding: 'utf8', maxBuffer: 1 << 28 });
      const t0 = performance.now();
      spawnSync('sync');
      const sync = (performance.now() - t0) / 1000;
      const last = r.stderr.trim().split('\n').at(-1);
      if (r.status !== 0) throw new Error(`${label}: build failed\n${r.stderr.slice(-2000)}`);
      const [wall, rssKb, user, sys] = last.split(' ').map(Number);
      const copy = trace ? longestCopy(r.stderr) : NaN;
      let inFreed = NaN;
      if (freed) {
        let all = 0;
        let hit = 0;
        for (const [g, k] of groupsOf(root)) {
          all += k;
          if (freed.has(g)) hit += k;
        }
        inFreed = hit / all;
      }
      res[label].push({ wall, sync: wall + sync, user, sys, rss: rssKb / 1024, copy, inFreed });
      if (process.env.REMOVE_EACH === '1') rmSync(root, { recursive: true, force: true });
      console.error(
        `${label} ${wall.toFixed(2)} s (+sync ${sync.toFixed(2)}) user ${user} sys ${sys} load ${loads.at(-1)}` +
          (trace ? ` copy ${copy.toFixed(2)} s` : '') +
          (freed ? ` inodes in freed groups ${(inFreed * 100).toFixed(0)} %` : ''),
      );
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const med = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (xs, d = 2) =>
  !xs.length ? '–' : `${med(xs).toFixed(d)} [${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}]`;
console.log(`load ${Math.min(...loads)}–${Math.max(...loads)}, ${rounds} rounds`);
const more = [...(trace ? [['copy', 'longest COPY (s)', 2]] : []), ...(ipg ? [['inFreed', 'in freed groups', 2]] : [])];
const heads = more.map((m) => ` ${m[1]} |`).join('');
console.log(`| variant | wall (s) | wall + sync (s) | user (s) | sys (s) | peak RSS (MB) |${heads}`);
console.log(`|---|---|---|---|---|---|${more.map(() => '---|').join('')}`);
for (const [label] of variants) {
  const xs = res[label];
  const col = (k, d) =>
    fmt(
      xs.map((x) => x[k]).filter((v) => !Number.isNaN(v)),
      d,
    );
  console.log(
    `| ${label} | ${col('wall')} | ${col('sync')} | ${col('user')} | ${col('sys')} | ${col('rss', 0)} |` +
      more.map(([k, , d]) => ` ${col(k, d)} |`).join(''),
  );
}
