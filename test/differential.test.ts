// The differential suite: every case under test/differential/cases is built by tsbuild, its image
// flattened by the suite's own reader (test/helpers/differential.ts) and compared with what BuildKit made
// of the same case (buildkit.json, recorded with test/differential/record.mjs on dockerd 20.10). No
// daemon is needed here. A case that differs fails unless it names the difference: `deliberate` (compared
// with exactly its mask left out) or `known` (a divergence not fixed yet; it must still differ, so the
// marker cannot outlive the fix).
// test-runner: long
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { cleanup, command, repo, storeWithBase, tempDir } from './helpers/cli.js';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import {
  Tree,
  cachedSteps,
  baseTree,
  diffRecords,
  listCases,
  masked,
  recordCase,
  tsbuildBuilder,
  type Record_,
} from './helpers/differential.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const casesDir = join(repo, 'test', 'differential', 'cases');
const cases = listCases(casesDir);
const work = tempDir('differential');
const store = storeWithBase(join(work, 'store'));
const tsb = tsbuildBuilder(command, store);

// Two builds at a time (the machine's two cores), in one store, which concurrent builds may share. Each case's
// test waits for its own result, so the cases report in order while later ones build.
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

// --- The oracle itself, on layers written here ---------------------------------------------------------

type E = Partial<tar.Header> & { name: string; data?: string };
function layer(entries: E[]): Readable {
  const p = tar.pack();
  for (const { data, ...h } of entries) p.entry({ mode: 0o644, ...h }, data ?? '');
  p.finalize();
  return p as unknown as Readable;
}

test('flattener: whiteouts, opaque dirs (entries of the same layer kept), hard links, capabilities', async () => {
  const t = new Tree();
  const cap = String.fromCharCode(1, 0, 0, 2, 0, 32, 0, 0);
  await t.apply(
    layer([
      { name: 'd/', type: 'directory', mode: 0o755 },
      { name: 'd/a', data: 'a' },
      { name: 'd/sub/b', data: 'b', uid: 7, gid: 8 },
      { name: 'e/x', data: 'x' },
      { name: 'f', type: 'link', linkname: 'd/a' },
      { name: 's', type: 'symlink', linkname: '../d/a', mode: 0o777 },
      { name: 'c', data: 'c', mode: 0o4755, pax: { 'SCHILY.xattr.security.capability': cap } },
    ]),
    0,
  );
  assert.equal(t.hardlinks(), [['/d/a', '/f']]);
  await t.apply(
    layer([
      { name: 'd/new', data: 'n' },
      { name: 'd/.wh..wh..opq' },
      { name: '.wh.e' },
      { name: 'g1', data: 'g' },
      { name: 'g2', type: 'link', linkname: 'g1' },
      { name: 'd/', type: 'directory', mode: 0o700 },
    ]),
    1,
  );
  assert.equal(Object.fromEntries(t.lines()), {
    '/c': `file 4755 0:0 1 ${sha('c')} cap=0100000200200000 "c"`,
    '/d': 'dir 0700 0:0',
    '/d/new': `file 0644 0:0 1 ${sha('n')} "n"`,
    '/f': `file 0644 0:0 1 ${sha('a')} "a"`,
    '/g1': `file 0644 0:0 1 ${sha('g')} "g"`,
    '/g2': `file 0644 0:0 1 ${sha('g')} "g"`,
    '/s': 'symlink 0:0 -> ../d/a',
  });
  // /d/a and /d/sub went with the opaque directory, /e with its whiteout: /f is alone now.
  assert.equal(t.hardlinks(), [['/g1', '/g2']]);
});

test('flattener: a directory no layer has an entry for is marked', async () => {
  const t = new Tree();
  await t.apply(layer([{ name: 'x/y/z', data: 'z' }]), 0);
  assert.is(t.lines().get('/x/y'), 'dir 0755 0:0 (implied: no entry in any layer)');
});

test("cache hits read alike from both builders' plain progress", () => {
  const buildkit = [
    '#5 [2/4] COPY a /a',
    '#5 CACHED',
    '#6 [3/4] RUN echo 2 > /v',
    '#6 CACHED',
    '#7 [4/4] RUN echo 3 > /w',
    '#7 DONE 0.3s',
  ].join('\n');
  const tsbuild = [
    '#1 [stage-0 1/6] FROM tsbuild/busybox:1',
    '#2 [stage-0 2/6] COPY a /a',
    '#2 CACHED',
    '#3 [stage-0 4/6] RUN echo $V > /v',
    '#3 CACHED',
    '#4 [stage-0 6/6] RUN echo $W > /w',
    '#4 DONE 0.1s',
  ].join('\n');
  const want = { 'stage-0 #1 COPY': true, 'stage-0 #2 RUN': true, 'stage-0 #3 RUN': false };
  assert.equal(cachedSteps(buildkit), want);
  assert.equal(cachedSteps(tsbuild), want);
});

// --- The cases ------------------------------------------------------------------------------------------

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
      // The diff alone (tsbuild's output is for failures): what the fix has to change.
      console.log(`known divergence ${c.name}:\n${raw.join('\n')}`);
      return;
    }
    if (spec.deliberate) {
      assert.ok(raw.length > 0, `${c.name} is marked deliberate but is identical without its mask: remove the marker`);
      const { outcome } = spec.deliberate.mask;
      if (outcome) {
        const stated = outcome === 'tsbuild-refuses' ? [true, false] : [false, true];
        assert.equal(
          [want.build.ok, got.build.ok],
          stated,
          `${c.name}: not the stated outcome ${outcome}\n${show(raw)}`,
        );
        assert.is(
          got.build.tagged,
          got.build.ok,
          `${c.name}: tsbuild tagged ${got.build.ok ? 'nothing' : 'a failed build'}`,
        );
        score.deliberate.push(`${c.name} (${spec.deliberate.why})`);
        return;
      }
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
