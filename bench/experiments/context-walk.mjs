// Walking + lstat-ing a tree: one promise per entry (as builder context.ts walk) vs readdirSync/lstatSync.
//   node bench/experiments/context-walk.mjs DIR sync|async
import fs, { promises as fsp } from 'node:fs';
import { join } from 'node:path';
const src = process.argv[2];
let n = 0;
const t = performance.now();
if (process.argv[3] === 'sync') {
  (function walk(d) {
    const names = fs.readdirSync(d).sort();
    for (const x of names) {
      const p = join(d, x);
      const st = fs.lstatSync(p, { bigint: true });
      n++;
      if (st.isDirectory()) walk(p);
    }
  })(src);
} else {
  await (async function walk(d) {
    const names = (await fsp.readdir(d)).sort();
    const sts = await Promise.all(names.map((x) => fsp.lstat(join(d, x), { bigint: true })));
    for (let i = 0; i < names.length; i++) {
      n++;
      if (sts[i].isDirectory()) await walk(join(d, names[i]));
    }
  })(src);
}
console.log(`${process.argv[3]}: ${n} entries in ${((performance.now() - t) / 1000).toFixed(3)} s`);
