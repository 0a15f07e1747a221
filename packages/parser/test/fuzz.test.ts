import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileError, buildGraph, dumpBuildkit, parse } from '../src/index.js';
import { conformance, fixtures } from './paths.js';

// Random mutations of every corpus Dockerfile must either parse or fail with a
// located DockerfileError: never a TypeError, a hang or an unlocated error.

function corpus(): string[] {
  const out: string[] = [];
  const parser = join(conformance, 'buildkit-parser');
  const dirs = [join(parser, 'testfiles'), join(parser, 'testfiles-negative'), fixtures];
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

const tokens = [
  '\\',
  '\n',
  '`',
  '"',
  "'",
  '$',
  '${',
  '}',
  '<<EOF',
  '\nEOF\n',
  '<<-',
  '[',
  ']',
  ',',
  '=',
  '--',
  '--mount=',
  ' ',
  '#',
  '# escape=`\n',
  'FROM ',
  'ARG ',
  'ONBUILD ',
  'RUN ',
  'COPY ',
  '\r\n',
  '\t',
  '\ufeff',
  '${X:?m}',
  'AS ',
  '3<<',
  '\\\n',
];

function mutate(text: string, r: () => number): string {
  let s = text;
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (s.length + 1));
    const op = r();
    if (op < 0.4) s = s.slice(0, at) + tokens[Math.floor(r() * tokens.length)] + s.slice(at);
    else if (op < 0.7) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 8));
    else if (op < 0.85) {
      const b = Math.floor(r() * s.length);
      s = s.slice(0, at) + s.slice(b, b + 20) + s.slice(at);
    } else s = s.slice(0, at) + String.fromCharCode(Math.floor(r() * 0x80)) + s.slice(at);
  }
  return s;
}

test('fuzz: mutations never crash', () => {
  const texts = corpus();
  assert.ok(texts.length >= 33 + 4, `corpus of ${texts.length} Dockerfiles`);
  const r = rng(20240601);
  let parsed = 0,
    rejected = 0;
  const N = 4000;
  for (let i = 0; i < N; i++) {
    const text = mutate(texts[i % texts.length], r);
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
  // Both outcomes must be reached, or the mutations test only one path of the parser.
  assert.ok(parsed > 0 && rejected > 0, `parsed ${parsed}, rejected ${rejected}`);
});

test.run();
