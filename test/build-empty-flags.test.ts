// A flag given an empty value (`--target "$TARGET"` with TARGET unset, as CI scripts write it) means what
// docker build takes it for: the flag's default, not a stage or a network named "".
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Base, cleanup, context, storeWithBase, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
// Two stages: the default target is the last one, whose file the RUN checks.
const ctx = context({ Dockerfile: `FROM ${Base} AS first\nRUN exit 7\nFROM ${Base} AS last\nRUN echo last > /last\n` });

const cases: Array<[string, string]> = [
  ['--target', 'the last stage'],
  ['--network', 'the default network'],
  ['--cache-from', 'no cache source (docker ignores an empty one)'],
];

test('build FLAG "" is the default, as docker build takes it', () => {
  for (const [flag, what] of cases) {
    const r = tsbuild(['build', '-q', flag, '', ctx], { root });
    assert.is(r.code, 0, `${flag} "": ${what}\n${r.stderr}`);
    assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/, flag);
  }
});

test.after(() => cleanup(root, ctx));
test.run();
