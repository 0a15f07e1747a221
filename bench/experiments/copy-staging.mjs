// How long staging a tree takes: serial awaited fs calls per file (as builder copy.ts writeFile), 64 in flight, or
// sync.
//   node bench/experiments/copy-staging.mjs DIR serial|parallel64|sync
// How long staging 20k context files takes: serial awaited (as copy.ts), async with 64 in flight, sync.
import fs, { promises as fsp, constants } from 'node:fs';
import { join } from 'node:path';
const src = process.argv[2],
  mode = process.argv[3];
const files = [];
(function walk(d, rel) {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) {
      files.push({ r, dir: true });
      walk(join(d, e.name), r);
    } else files.push({ r, dir: false });
  }
})(src, '');
const out = `/tmp/tsb-bench-stage-${mode}`;
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out);
const t = performance.now();
const mt = new Date(1700000000000);
const one = async (f) => {
  const h = join(out, f.r);
  await fsp.rm(h, { recursive: true, force: true });
  if (f.dir) {
    await fsp.mkdir(h, { recursive: true });
    await fsp.chown(h, 0, 0);
    await fsp.chmod(h, 0o755);
    return;
  }
  await fsp.copyFile(join(src, f.r), h, constants.COPYFILE_FICLONE);
  await fsp.chown(h, 0, 0);
  await fsp.chmod(h, 0o644);
  await fsp.utimes(h, mt, mt);
};
if (mode === 'serial') for (const f of files) await one(f);
else if (mode === 'sync')
  for (const f of files) {
    const h = join(out, f.r);
    if (f.dir) {
      fs.mkdirSync(h);
      fs.chownSync(h, 0, 0);
      fs.chmodSync(h, 0o755);
      continue;
    }
    fs.copyFileSync(join(src, f.r), h, constants.COPYFILE_FICLONE);
    fs.chownSync(h, 0, 0);
    fs.chmodSync(h, 0o644);
    fs.utimesSync(h, mt, mt);
  }
else {
  // directories first (serial, they are few), then files 64 at a time
  for (const f of files)
    if (f.dir) {
      const h = join(out, f.r);
      fs.mkdirSync(h, { recursive: true });
    }
  const fl = files.filter((f) => !f.dir);
  let i = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (i < fl.length) {
        const f = fl[i++];
        const h = join(out, f.r);
        await fsp.copyFile(join(src, f.r), h, constants.COPYFILE_FICLONE);
        await fsp.chown(h, 0, 0);
        await fsp.chmod(h, 0o644);
        await fsp.utimes(h, mt, mt);
      }
    }),
  );
}
console.log(`${mode}: ${files.length} entries in ${((performance.now() - t) / 1000).toFixed(2)} s`);
fs.rmSync(out, { recursive: true, force: true });
