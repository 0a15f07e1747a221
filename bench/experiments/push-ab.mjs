// Interleaved A/B of `tsbuild build --push`: each variant a built checkout of tsbuild (`pnpm run build` done
// there), each build on a fresh copy of the bench's template store (bench/work/tsbuild/template: the bases only;
// run the bench once first) into a fresh docker-registry, `sync` after it; the order alternates every round.
// Prints median [min–max] wall, median CPU (user+sys of the process tree, /usr/bin/time) and peak RSS.
//   node bench/experiments/push-ab.mjs ROUNDS CTX LABEL=CHECKOUT... [-- more build flags]
// A label starting with `nopush` builds without --push (what the push adds).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { abArgs, load1 } from '../lib/util.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { rounds, ctx, variants, extra } = abArgs('push-ab.mjs', 'CHECKOUT');
const { startRegistry } = await import(join(repo, 'packages/testkit/dist/src/registry.js'));
const template = join(repo, 'bench/work/tsbuild/template');
const work = mkdtempSync(join(tmpdir(), 'push-ab-'));
const res = Object.fromEntries(variants.map(([l]) => [l, []]));
const loads = [];
try {
  for (let i = 0; i < Number(rounds); i++) {
    for (const [label, checkout] of i % 2 ? [...variants].reverse() : variants) {
      const reg = await startRegistry();
      const root = join(work, 'root');
      rmSync(root, { recursive: true, force: true });
      spawnSync('cp', ['-a', template, root]);
      spawnSync('sync');
      loads.push(load1());
      const push = label.startsWith('nopush') ? [] : ['--push'];
      const args = ['build', '--progress=plain', ...extra, ...push, '-t', `${reg.host}/bench/ab:ci`, ctx];
      const t0 = performance.now();
      const r = spawnSync(
        '/usr/bin/time',
        ['-f', '%U %S %M', join(checkout, 'packages/builder/bin/tsbuild'), ...args],
        {
          env: { ...process.env, TSBUILD_ROOT: root },
          encoding: 'utf8',
        },
      );
      spawnSync('sync');
      const ms = performance.now() - t0;
      const [u, s, m] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
      if (r.status !== 0) console.log(label, 'FAILED', r.stderr.slice(-2000));
      else res[label].push({ ms, cpu: (u + s) * 1000, rss: m / 1024 });
      await reg.stop();
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const s = (ms) => (ms / 1000).toFixed(2);
for (const [l] of variants) {
  const xs = res[l];
  if (!xs.length) continue;
  const ms = xs.map((x) => x.ms);
  const cpu = s(med(xs.map((x) => x.cpu)));
  console.log(
    `${l.padEnd(8)} ${s(med(ms))} s [${s(Math.min(...ms))}–${s(Math.max(...ms))}]  CPU ${cpu} s` +
      `  peak RSS ${med(xs.map((x) => x.rss)).toFixed(0)} MB  (${ms.map(s).join(' ')})`,
  );
}
console.log(`load average during: median ${med(loads)} [${Math.min(...loads)}–${Math.max(...loads)}]`);
