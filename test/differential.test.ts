// The differential suite: every case under test/differential/cases is built by tsbuild, its image
// flattened by the suite's own reader (test/helpers/differential.ts) and compared with what BuildKit made
// of the same case (buildkit.json, recorded with test/differential/record.mjs on dockerd 20.10). No
// daemon is needed here. A case that differs fails unless it names the difference: `deliberate` (compared
// with exactly its mask left out) or `known` (a divergence not fixed yet; it must still differ, so the
// marker cannot outlive the fix).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, command, repo, storeWithBase, tempDir } from './helpers/cli.js';
import {
  baseTree,
  diffRecords,
  listCases,
  masked,
  recordCase,
  tsbuildBuilder,
  type Record_,
} from './helpers/differential.js';

const casesDir = join(repo, 'test', 'differential', 'cases');
const cases = listCases(casesDir);
const work = tempDir('differential');
const store = storeWithBase(join(work, 'store'));
const tsb = tsbuildBuilder(command, store);

// Two builds at a time: the machine's two cores, and the builds of different cases share nothing.
const results = new Map<string, Promise<{ record: Record_; log: string }>>();
const start = (() => {
  let base: Promise<Map<string, string>> | undefined;
  const queue = [...cases];
  const running: Promise<void>[] = [];
  return () => {
    if (base) return;
    base = baseTree(join(repo, 'fixtures', 'busybox', 'rootfs.tar'));
    const settle = new Map<string, (v: { record: Record_; log: string }) => void>();
    const fail = new Map<string, (e: unknown) => void>();
    for (const c of cases) {
      const p = new Promise<{ record: Record_; log: string }>((res, rej) => {
        settle.set(c.name, res);
        fail.set(c.name, rej);
      });
      p.catch(() => {}); // reported by the case's own test
      results.set(c.name, p);
    }
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const w = join(work, c.name);
        mkdirSync(w);
        try {
          settle.get(c.name)!(await recordCase(tsb, c, w, await base!));
        } catch (e) {
          fail.get(c.name)!(e);
        }
      }
    };
    running.push(worker(), worker());
  };
})();

const score = { identical: 0, deliberate: [] as string[], known: [] as string[], cases: 0 };

test('the suite has its cases, each recorded', () => {
  assert.ok(cases.length >= 60, `${cases.length} cases`);
  const unrecorded = cases.filter((c) => !existsSync(join(c.dir, 'buildkit.json'))).map((c) => c.name);
  assert.equal(unrecorded, [], 'record them with node test/differential/record.mjs CASE...');
  for (const c of cases) {
    assert.ok(!(c.spec.known && c.spec.deliberate), `${c.name}: known or deliberate, not both`);
    assert.ok(c.spec.description, `${c.name}: case.json has no description`);
  }
  start();
});

for (const c of cases) {
  test(`differential: ${c.name}`, async () => {
    start();
    score.cases++;
    const want = JSON.parse(readFileSync(join(c.dir, 'buildkit.json'), 'utf8')) as Record_;
    const { record: got, log } = await results.get(c.name)!;
    assert.is(
      want.build.ok,
      !c.spec.fail,
      `${c.name}: the recording's build ${want.build.ok ? 'succeeded' : 'failed'}`,
    );
    const raw = diffRecords(want, got);
    const spec = c.spec;
    const show = (d: string[]) =>
      `${c.name}: ${spec.description}\n${d.join('\n')}\n--- tsbuild's output (end)\n` +
      log.split('\n').slice(-25).join('\n');
    if (spec.known) {
      assert.ok(
        raw.length > 0,
        `${c.name} is marked known ("${spec.known}") but is now identical: remove the known marker`,
      );
      score.known.push(`${c.name} (${spec.known})`);
      console.log(`known divergence ${show(raw)}`);
      return;
    }
    if (spec.deliberate) {
      assert.ok(raw.length > 0, `${c.name} is marked deliberate but is identical without its mask: remove the marker`);
      const d = diffRecords(masked(want, spec.deliberate.mask), masked(got, spec.deliberate.mask));
      if (d.length)
        assert.unreachable(`differs beyond its deliberate mask ${JSON.stringify(spec.deliberate.mask)}:\n${show(d)}`);
      score.deliberate.push(`${c.name} (${spec.deliberate.why})`);
      return;
    }
    if (raw.length) assert.unreachable(`differs from BuildKit:\n${show(raw)}`);
    score.identical++;
  });
}

test('score', () => {
  const line =
    `differential: ${score.identical}/${score.cases} cases identical ` +
    `(${score.deliberate.length} deliberate differences, ${score.known.length} known divergences)`;
  console.log(line);
  for (const d of score.deliberate) console.log(`  deliberate: ${d}`);
  for (const k of score.known) console.log(`  known: ${k}`);
  assert.is(score.cases, cases.length);
});

test.after(() => cleanup(work));

test.run();
