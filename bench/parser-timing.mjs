#!/usr/bin/env node
// How long the parser takes on a generated 1,000-instruction Dockerfile (ENV/RUN with mounts and
// continuations/COPY/LABEL/WORKDIR/heredoc RUN/ARG/CMD, 5 stages): the first run (JIT included), then
// the median and range of warm runs. A measurement, not a test: nothing here passes or fails.
//
//   node bench/parser-timing.mjs [warm-runs]      (after `pnpm run build`)
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { parse, buildGraph } = await import(join(repo, 'packages/parser/dist/src/index.js'));
const runs = Number(process.argv[2] ?? 60);

function dockerfile() {
  const lines = ['ARG BASE=alpine', 'FROM ${BASE} AS s0'];
  for (let i = 0; lines.length < 1000; i++) {
    const k = i % 8;
    if (k === 0) lines.push(`ENV V${i}=value-${i} P${i}="a b $V${i}"`);
    else if (k === 1) lines.push(`RUN --mount=type=cache,target=/c${i} echo ${i} \\\n    && echo more`);
    else if (k === 2) lines.push(`COPY --chown=1:1 src${i} /dst/\${V${i - 2}}/`);
    else if (k === 3) lines.push(`LABEL l${i}="x" m${i}=y`);
    else if (k === 4) lines.push(`WORKDIR /w/${i}`);
    else if (k === 5) lines.push(`RUN <<EOF\necho ${i}\nEOF`);
    else if (k === 6) lines.push(`ARG A${i}=\${V${i - 6}:-d}`);
    else lines.push(i % 200 === 7 ? `FROM s0 AS s${i}` : `CMD ["echo", "${i}"]`);
  }
  return lines.join('\n') + '\n';
}

function once(text) {
  const t0 = performance.now();
  const df = parse(text);
  const t1 = performance.now();
  buildGraph(df, {});
  const t2 = performance.now();
  return { instructions: df.instructions.length, parse: t1 - t0, graph: t2 - t1 };
}

const text = dockerfile();
const first = once(text);
const warm = Array.from({ length: runs }, () => once(text));
const stat = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)].toFixed(1)} ms [${s[0].toFixed(1)}–${s[s.length - 1].toFixed(1)}]`;
};
console.log(`${first.instructions} instructions`);
console.log(`first run: parse ${first.parse.toFixed(1)} ms, buildGraph ${first.graph.toFixed(1)} ms`);
const parseMs = stat(warm.map((w) => w.parse)),
  graphMs = stat(warm.map((w) => w.graph));
console.log(`warm (${runs} runs): parse ${parseMs}, buildGraph ${graphMs}`);
