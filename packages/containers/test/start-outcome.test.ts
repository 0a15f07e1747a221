// What `run -d` / `start` make of their supervisor's first line on its fd 3 (startDetached): running,
// or a failure with a clear message and docker's exit status, never a silent success.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ContainerStartError, startOutcome } from '../src/runner.js';

// [the supervisor's first line (undefined: it ended without one), the error (undefined: running), exit code]
const cases: [string | undefined, RegExp | undefined, number][] = [
  ['{"running":true}', undefined, 0],
  [
    '{"running":false,"code":127,"error":"exec: \\"nope\\": executable file not found"}',
    /executable file not found/,
    127,
  ],
  // Ended before it ran without an error of its own (a stop racing the start): not running, said so.
  ['{"running":false,"code":137}', /^container web ended before it was running \(stopped\?\); see \/l\/web\.log$/, 137],
  ['{"running":false,"code":0}', /^container web ended before it was running/, 125],
  [undefined, /^the supervisor of web ended before starting it; see \/l\/web\.log$/, 125],
  ['not json', /^the supervisor of web said "not json", not whether web runs; see \/l\/web\.log$/, 125],
];

test('startOutcome: running, or an error naming the container and its log', () => {
  for (const [line, err, code] of cases) {
    if (err === undefined) {
      startOutcome(line, 'web', '/l/web.log');
      continue;
    }
    try {
      startOutcome(line, 'web', '/l/web.log');
      assert.unreachable(`${line}: no error`);
    } catch (e) {
      assert.match((e as Error).message, err, String(line));
      assert.is(e instanceof ContainerStartError ? e.exitCode : 125, code, String(line));
    }
  }
});

test.run();
