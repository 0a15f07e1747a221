import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileError, buildGraph, dumpBuildkit, parse } from '../src/index.js';
import { fixtures, shared } from './paths.js';

// Random mutations of every corpus Dockerfile must either parse or fail with a
// located DockerfileError: never a TypeError, a hang or an unlocated error.

function corpus(): string[] {
  const out: string[] = [];
  const dirs = [join(shared, 'conformance', 'buildkit-parser', 'testfiles'), join(shared, 'conformance', 'buildkit-parser', 'testfiles-negative'), fixtures];
  for (const d of dirs) for (const c of readdirSync(d)) out.push(readFileSync(join(d, c, 'Dockerfile'), 'utf8'));
  return out;
}

// mulberry32: small, deterministic.
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const tokens = ['\\', '\n', '`', '"', "'", '$', '${', '}', '<<EOF', '\nEOF\n', '<<-', '[', ']', ',', '=', '--', '--mount=', ' ', '#', '# escape=`\n', 'FROM ', 'ARG ', 'ONBUILD ', 'RUN ', 'COPY ', '\r\n', '\t', '\ufeff', '${X:?m}', 'AS ', '3<<', '\\\n'];

function mutate(text: string, r: () => number): string {
  let s = text;
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (s.length + 1));
    const op = r();
    if (op < 0.4) s = s.slice(0, at) + tokens[Math.floor(r() * tokens.length)] + s.slice(at);
    else if (op < 0.7) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 8));
    else if (op < 0.85) { const b = Math.floor(r() * s.length); s = s.slice(0, at) + s.slice(b, b + 20) + s.slice(at); }
    else s = s.slice(0, at) + String.fromCharCode(Math.floor(r() * 0x80)) + s.slice(at);
  }
  return s;
}

test('fuzz: mutations never crash', () => {
  const texts = corpus();
  const r = rng(20240601);
  let parsed = 0, rejected = 0;
  const N = 4000;
  for (let i = 0; i < N; i++) {
    const text = mutate(texts[i % texts.length]!, r);
    try {
      const df = parse(text);
      dumpBuildkit(df);
      buildGraph(df, { buildArgs: { X: '1' }, baseConfig: () => ({ Env: ['PATH=/bin'], OnBuild: ['RUN true'] }) });
      parsed++;
    } catch (e) {
      if (!(e instanceof DockerfileError)) {
        assert.unreachable(`non-DockerfileError ${(e as Error)?.stack}\n--- input ---\n${text}`);
      }
      const l = (e as DockerfileError).location;
      assert.ok(l.line >= 1 && l.column >= 1 && l.endLine >= l.line, `located: ${JSON.stringify(l)}`);
      rejected++;
    }
  }
  console.log(`fuzz: ${N} mutations, ${parsed} parsed, ${rejected} rejected with a located error`);
});

test('timing: 1,000-instruction Dockerfile (printed, not asserted)', () => {
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
  const text = lines.join('\n') + '\n';
  const t0 = performance.now();
  const df = parse(text);
  const t1 = performance.now();
  buildGraph(df, {});
  const t2 = performance.now();
  console.log(`timing: ${df.instructions.length} instructions: parse ${(t1 - t0).toFixed(1)} ms, buildGraph ${(t2 - t1).toFixed(1)} ms`);
});

test.run();
