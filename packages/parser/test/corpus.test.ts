// Real Dockerfiles from public projects (corpus/, see corpus/README.md): every one must plan, and each stage must
// be what the file says — its name and its base (scratch, an earlier stage, or the image reference with the global
// ARG defaults expanded) — as read by corpus/record.mjs, a line-level reader that shares no code with the parser.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildGraph, parse, type FromRef, type Graph, type Stage } from '../src/index.js';
import { corpusDir } from './paths.js';

interface Expected {
  buildArgs?: Record<string, string>;
  globalArgs: Record<string, string>;
  stages: { from: string; name?: string }[];
}
const expected = JSON.parse(readFileSync(join(corpusDir, 'expected.json'), 'utf8')) as Record<string, Expected>;
const files = Object.keys(expected);
const platform = 'linux/amd64';
const builtins: Record<string, string> = {
  TARGETPLATFORM: platform,
  TARGETOS: 'linux',
  TARGETARCH: 'amd64',
  TARGETVARIANT: '',
  BUILDPLATFORM: platform,
  BUILDOS: 'linux',
  BUILDARCH: 'amd64',
  BUILDVARIANT: '',
};

/**
 * `$X`, `${X}`, `${X:-d}` and `${X-d}` with plain defaults only. Anything else (other operators, quotes, escapes,
 * a variable whose own value was not plain) gives undefined: that base is then not compared, never guessed.
 */
function expandSimple(word: string, vars: Map<string, string | undefined>): string | undefined {
  if (/["'\\]/.test(word)) return undefined;
  let unsure = false;
  const out = word.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^${}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)|\$\{[^}]*\}?/g,
    (m, a, op, d, b) => {
      const name = (a ?? b) as string | undefined;
      if (name === undefined || (vars.has(name) && vars.get(name) === undefined)) {
        unsure = true;
        return m;
      }
      const v = vars.get(name);
      if (op === ':-') return v ? v : d;
      if (op === '-') return v ?? d;
      return v ?? '';
    },
  );
  return unsure ? undefined : out;
}

function want(file: string, e: Expected, i: number): FromRef | undefined {
  // Global ARGs in file order, each default expanded against those before it (as BuildKit does); --build-arg wins.
  const vars = new Map<string, string | undefined>(Object.entries(builtins));
  for (const [k, v] of Object.entries(e.globalArgs)) vars.set(k, e.buildArgs?.[k] ?? expandSimple(v, vars));
  for (const [k, v] of Object.entries(e.buildArgs ?? {})) vars.set(k, v);
  const word = expandSimple(e.stages[i].from, vars);
  if (word === undefined) return undefined;
  if (word.toLowerCase() === 'scratch') return { type: 'scratch' };
  const byName = e.stages.slice(0, i).findIndex((s) => s.name === word.toLowerCase());
  if (byName >= 0) return { type: 'stage', stage: byName };
  if (/^\d+$/.test(word) && Number(word) < i) return { type: 'stage', stage: Number(word) };
  void file;
  return { type: 'image', ref: word };
}

const totals = { files: 0, planned: 0, stages: 0, reached: 0, compared: 0 };

for (const file of files) {
  test(`corpus: ${file}`, () => {
    const e = expected[file];
    const text = readFileSync(join(corpusDir, file), 'utf8');
    const df = parse(text, { file });
    const opts = { file, buildArgs: e.buildArgs ?? {}, buildPlatform: platform, targetPlatform: platform };
    // Plan the default target and every named stage as a target: together they reach every stage that a build
    // can reach (an unnamed stage nothing uses is planned but never part of a graph).
    const graphs: Graph[] = [buildGraph(df, opts)];
    for (const s of e.stages) if (s.name) graphs.push(buildGraph(df, { ...opts, target: s.name }));
    const seen = new Map<number, Stage>();
    for (const g of graphs) for (const s of g.stages) seen.set(s.index, s);
    totals.files++;
    totals.planned++;
    totals.stages += e.stages.length;
    assert.ok(Math.max(...seen.keys()) < e.stages.length, `more stages than FROM lines (${e.stages.length})`);
    for (const [i, s] of seen) {
      totals.reached++;
      assert.is(s.name, e.stages[i].name, `stage ${i} name`);
      const w = want(file, e, i);
      if (w === undefined) continue;
      totals.compared++;
      assert.equal(s.from, w, `stage ${i} base (FROM ${e.stages[i].from})`);
    }
    // The last stage is the default target, always planned.
    assert.ok(seen.has(e.stages.length - 1), 'the last stage is planned');
  });
}

test('corpus: the count', () => {
  assert.ok(files.length >= 300, `${files.length} files`);
  assert.is(totals.planned, files.length, 'every file planned');
  console.log(
    `corpus: ${totals.planned}/${totals.files} files planned; ${totals.reached}/${totals.stages} stages reached ` +
      `by a target, ${totals.compared} bases compared with what the file says`,
  );
});

test.run();
