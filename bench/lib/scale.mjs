// Generated workloads for the "how cost grows" measurements (issue 17). Nothing here is committed data: every
// context is written under bench/work/ctx (and the file trees under bench/data, cached) from the sizes asked for.
//
//   context  N files of ~1 KiB on average (the many-files generator, seeded), COPY'd, then a COPY of src/ and a
//            RUN that reads only src/: the one-change phase edits src/index.js.
//   steps    a Dockerfile of N instructions after FROM: WORKDIR, then RUN and ENV alternately (so that 200 steps
//            stay under overlayfs's ~125-layer limit that dockerd enforces), then COPY late.txt and a RUN that
//            reads it: the one-change phase edits late.txt, the last two steps.
//   stages   N independent stages (COPY an input, RUN a 0.2 s sleep and a hash), a final stage that COPY --from's
//            each: the one-change phase edits in1.txt, the input of one stage.
//   layers   a base image of N layers (busybox + N-1 one-file COPY layers), pushed to a local registry by
//            tsbuild; the workload is FROM that image + one RUN, built cold (the base pulled and unpacked).
import { join } from 'node:path';
import { mkdirSync, rmSync, writeFileSync, existsSync, utimesSync, readdirSync } from 'node:fs';
import { sh } from './util.mjs';
import { generateManyFiles, MTIME } from '../gen-data.mjs';

export const SCALE = {
  context: {
    label: 'files in the context',
    full: [2000, 20000, 200000],
    quick: [500, 2000, 8000],
    phases: ['cold', 'noop', 'change'],
  },
  steps: { label: 'Dockerfile steps', full: [10, 50, 200], quick: [5, 10, 20], phases: ['cold', 'noop', 'change'] },
  stages: { label: 'parallel stages', full: [1, 4, 16], quick: [1, 2, 4], phases: ['cold', 'noop', 'change'] },
  layers: { label: 'layers in the base image', full: [1, 30, 120], quick: [1, 5, 15], phases: ['cold'] },
};

const BASE = 'bench/busybox:base';

function touchTree(p) {
  for (const e of readdirSync(p, { withFileTypes: true })) {
    const q = join(p, e.name);
    if (e.isDirectory()) touchTree(q);
    utimesSync(q, MTIME, MTIME);
  }
  utimesSync(p, MTIME, MTIME);
}

function freshCtx(work, name) {
  const ctx = join(work, 'ctx', name);
  rmSync(ctx, { recursive: true, force: true });
  mkdirSync(ctx, { recursive: true });
  return ctx;
}

/** The file tree of N files, cached in bench/data/scale-ctx-N (seeded: the same bytes on every machine). */
export function ensureScaleTree(dataDir, files, log) {
  const dir = join(dataDir, `scale-ctx-${files}`);
  const nm = join(dir, 'node_modules');
  if (existsSync(join(dir, 'DONE'))) return nm;
  mkdirSync(dir, { recursive: true });
  const t = performance.now();
  const r = generateManyFiles({ files, totalMB: files / 1024, seed: 17, out: nm });
  writeFileSync(join(dir, 'DONE'), JSON.stringify(r) + '\n');
  log(
    `scale: generated ${files} files (${(r.bytes / 1048576).toFixed(1)} MiB) ` +
      `in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  return nm;
}

/**
 * Writes the workload `dim` of size n; resolves { ctx, change } (change: the file the one-change phase edits,
 * relative to ctx). For `layers`, `from` is the pushed base's reference.
 */
export async function makeScaleContext(dim, n, { work, dataDir, log, from }) {
  const ctx = freshCtx(work, `scale-${dim}-${n}`);
  const df = [];
  let change = null;
  if (dim === 'context') {
    const nm = ensureScaleTree(dataDir, n, log);
    await sh('cp', ['-al', nm, join(ctx, 'node_modules')]);
    mkdirSync(join(ctx, 'src'));
    writeFileSync(join(ctx, 'src', 'index.js'), "console.log('scale');\n");
    df.push(
      `FROM ${BASE}`,
      'WORKDIR /app',
      'COPY node_modules/ ./node_modules/',
      'COPY src/ ./src/',
      'RUN wc -c src/index.js > /app/src-bytes',
    );
    change = 'src/index.js';
  } else if (dim === 'steps') {
    df.push(`FROM ${BASE}`, 'WORKDIR /s');
    for (let k = 2; k <= n - 2; k++) df.push(k % 2 === 0 ? `RUN echo ${k} >> /s/log` : `ENV STEP_${k}=${k}`);
    df.push('COPY late.txt /s/', 'RUN cat /s/late.txt | wc -c > /s/out');
    writeFileSync(join(ctx, 'late.txt'), 'late\n');
    change = 'late.txt';
  } else if (dim === 'stages') {
    for (let k = 1; k <= n; k++) {
      writeFileSync(join(ctx, `in${k}.txt`), `input ${k}\n`);
      df.push(
        `FROM ${BASE} AS s${k}`,
        `COPY in${k}.txt /in`,
        'RUN sleep 0.2 && cat /in > /out && head -c 1000000 /dev/urandom | md5sum >> /out',
      );
    }
    df.push(`FROM ${BASE}`);
    for (let k = 1; k <= n; k++) df.push(`COPY --from=s${k} /out /out/${k}`);
    df.push('RUN cat /out/* | wc -c > /sum');
    change = 'in1.txt';
  } else if (dim === 'layers') {
    df.push(`FROM ${from}`, 'RUN ls /layers 2>/dev/null | wc -l > /count && cat /bin/busybox | wc -c >> /count');
  } else throw new Error(`scale: unknown dimension ${dim}`);
  writeFileSync(join(ctx, 'Dockerfile'), df.join('\n') + '\n');
  touchTree(ctx);
  return { ctx, change };
}

/** The context of the layer-count base: busybox + n-1 COPY layers of one small file each. */
export function makeLayersBaseContext(work, n) {
  const ctx = freshCtx(work, `scale-layers-base-${n}`);
  const df = [`FROM ${BASE}`];
  for (let k = 2; k <= n; k++) {
    writeFileSync(join(ctx, `l${k}.txt`), `layer ${k}\n`);
    df.push(`COPY l${k}.txt /layers/`);
  }
  // A Dockerfile of FROM alone is the busybox base itself (1 layer), tagged under the new name.
  writeFileSync(join(ctx, 'Dockerfile'), df.join('\n') + '\n');
  touchTree(ctx);
  return ctx;
}
