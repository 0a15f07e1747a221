// BuildKit's parser golden files through the real CLI: `tsbuild parse --format buildkit`
// prints exactly each `result`, and every negative case exits 2 with file:line:col.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repo, tsbuild } from './helpers/cli.js';

// The parser package's copy of BuildKit's data (its README names the upstream revision).
const conformance = join(repo, 'packages', 'parser', 'test', 'conformance', 'buildkit-parser');
const positive = readdirSync(join(conformance, 'testfiles')).sort();
const negative = readdirSync(join(conformance, 'testfiles-negative')).sort();
let passed = 0;

test('the conformance data holds its 33 positive and 4 negative cases', () => {
  assert.is(positive.length, 33);
  assert.is(negative.length, 4);
});

for (const name of positive) {
  test(`buildkit dump: ${name}`, () => {
    const dir = join(conformance, 'testfiles', name);
    const r = tsbuild(['parse', '--format', 'buildkit', '-f', join(dir, 'Dockerfile')]);
    assert.is(r.code, 0, r.stderr);
    assert.fixture(r.stdout, readFileSync(join(dir, 'result'), 'utf8'));
    passed++;
  });
}

for (const name of negative) {
  test(`rejected with a location: ${name}`, () => {
    const file = join(conformance, 'testfiles-negative', name, 'Dockerfile');
    const r = tsbuild(['parse', '--format', 'buildkit', '-f', file]);
    assert.is(r.code, 2);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+:\\d+: `));
    passed++;
  });
}

test('score: every case passed through the CLI', () => {
  console.log(`  tsbuild parse conformance through the CLI: ${passed}/${positive.length + negative.length}`);
  assert.is(passed, 33 + 4);
});
test.run();
