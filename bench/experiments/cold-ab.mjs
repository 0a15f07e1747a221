// Interleaved A/B of a cold `tsbuild build`: each variant a tsbuild command (a built checkout's
// packages/builder/bin/tsbuild), each build on a fresh copy of the bench's template store
// (bench/work/tsbuild/template: the bases only; run the bench once first), then a timed `sync`; the order
// alternates every round. The stores are kept until the end and removed together: removing one between builds
// leaves thousands of just-freed inodes that ext4 passes over (`recently_deleted`) when the next build creates
// files, which made one and the same build's system time swing from 1 s to 6 s.
// On a filesystem that has no such effect (tmpfs), WORK=DIR REMOVE_EACH=1 puts the stores in DIR, each removed
// after its build. Prints median [min–max] wall, wall + sync, user and sys CPU of the process tree, peak RSS,
// and the load.
//   [TEMPLATE=STORE] [WORK=DIR] [REMOVE_EACH=1] \
//     node bench/experiments/cold-ab.mjs ROUNDS CTX LABEL=TSBUILD... [-- flags]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { abArgs, load1 } from '../lib/util.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { rounds, ctx, variants, extra } = abArgs('cold-ab.mjs', 'TSBUILD');
// TEMPLATE: another template store (a checkout whose bench has run).
const template = process.env.TEMPLATE ?? join(repo, 'bench/work/tsbuild/template');
const work = mkdtempSync(join(process.env.WORK ?? tmpdir(), 'cold-ab-'));
const res = Object.fromEntries(variants.map(([l]) => [l, []]));
const loads = [];
let n = 0;
try {
  for (let i = 0; i < Number(rounds); i++) {
    for (const [label, bin] of i % 2 ? [...variants].reverse() : variants) {
      const root = join(work, `store-${n++}`);
      spawnSync('cp', ['-a', template, root]);
      spawnSync('sync');
      loads.push(load1());
      const args = ['-f', '%e %M %U %S', bin, 'build', '--progress=plain', ...extra, '-t', 'ab:cold', ctx];
      const r = spawnSync('/usr/bin/time', args, { env: { ...process.env, TSBUILD_ROOT: root }, encoding: 'utf8' });
      const t0 = performance.now();
      spawnSync('sync');
      const sync = (performance.now() - t0) / 1000;
      const last = r.stderr.trim().split('\n').at(-1);
      if (r.status !== 0) throw new Error(`${label}: build failed\n${r.stderr.slice(-2000)}`);
      const [wall, rssKb, user, sys] = last.split(' ').map(Number);
      res[label].push({ wall, sync: wall + sync, user, sys, rss: rssKb / 1024 });
      if (process.env.REMOVE_EACH === '1') rmSync(root, { recursive: true, force: true });
      console.error(
        `${label} ${wall.toFixed(2)} s (+sync ${sync.toFixed(2)}) user ${user} sys ${sys} load ${loads.at(-1)}`,
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
const fmt = (xs, d = 2) => `${med(xs).toFixed(d)} [${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}]`;
console.log(`load ${Math.min(...loads)}–${Math.max(...loads)}, ${rounds} rounds`);
console.log('| variant | wall (s) | wall + sync (s) | user (s) | sys (s) | peak RSS (MB) |');
console.log('|---|---|---|---|---|---|');
for (const [label] of variants) {
  const xs = res[label];
  const col = (k, d) =>
    fmt(
      xs.map((x) => x[k]),
      d,
    );
  console.log(`| ${label} | ${col('wall')} | ${col('sync')} | ${col('user')} | ${col('sys')} | ${col('rss', 0)} |`);
}
