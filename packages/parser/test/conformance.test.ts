import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileError, dumpBuildkit, parse } from '../src/index.js';
import { conformance } from './paths.js';

const root = join(conformance, 'buildkit-parser');
// The score this parser reaches on the copied BuildKit revision: every case. A refresh of the data
// that adds cases changes these on purpose (see the data's README).
const POSITIVE = 33,
  NEGATIVE = 4;
let positive = 0,
  negative = 0;
const positives = readdirSync(join(root, 'testfiles')).sort();
const negatives = readdirSync(join(root, 'testfiles-negative')).sort();

for (const name of positives) {
  test(`positive: ${name}`, () => {
    const dir = join(root, 'testfiles', name);
    const text = readFileSync(join(dir, 'Dockerfile'), 'utf8');
    const want = readFileSync(join(dir, 'result'), 'utf8');
    assert.fixture(dumpBuildkit(parse(text, { file: name })) + '\n', want);
    positive++;
  });
}

for (const name of negatives) {
  test(`negative: ${name}`, () => {
    const text = readFileSync(join(root, 'testfiles-negative', name, 'Dockerfile'), 'utf8');
    try {
      parse(text, { file: name });
    } catch (e) {
      assert.instance(e, DockerfileError);
      const err = e as DockerfileError;
      assert.ok(err.location.line >= 1 && err.location.column >= 1, 'located');
      negative++;
      return;
    }
    assert.unreachable('should fail to parse');
  });
}

test('testfile-line spans', () => {
  const df = parse(readFileSync(join(root, 'testfile-line', 'Dockerfile'), 'utf8'));
  const spans = df.instructions.map((n) => [n.location.line, n.location.endLine]);
  assert.equal(spans, [
    [5, 5],
    [11, 12],
    [17, 31],
  ]);
});

// Runs last: every case above must have passed, and the data must hold the cases it held when copied.
test('score: 33/33 positive, 4/4 negative', () => {
  console.log(`parser conformance: ${positive}/${positives.length} positive, ${negative}/${negatives.length} negative`);
  assert.equal([positives.length, negatives.length], [POSITIVE, NEGATIVE], 'cases in the data');
  assert.equal([positive, negative], [POSITIVE, NEGATIVE], 'cases passed');
});

test.run();
