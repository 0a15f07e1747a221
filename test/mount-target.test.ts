// RUN --mount with a missing or relative target, through the CLI: the mount lands in the step's working directory
// (the stage's WORKDIR, or the base image's), as BuildKit places it; a target that resolves to / is refused with
// its place. The corpus test (packages/parser/test/corpus.test.ts) plans real Dockerfiles written this way.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';

const root = storeWithBase(tempDir('store'));

const rows: { name: string; dockerfile: string; files?: Record<string, string>; out?: RegExp; fail?: RegExp }[] = [
  {
    name: 'bind mount of the context with no target: the working directory',
    dockerfile: `FROM ${Base}\nWORKDIR /src\nRUN --mount=type=bind cat /src/hello.txt\n`,
    files: { 'hello.txt': 'hello from the context\n' },
    out: /hello from the context/,
  },
  {
    name: 'relative targets join WORKDIR (bind dst=, cache target=)',
    dockerfile:
      `FROM ${Base}\nWORKDIR /w\nRUN --mount=type=bind,src=sub,dst=in --mount=type=cache,target=.cache ` +
      `sh -c 'cat /w/in/f.txt; echo cached > /w/.cache/x; cat /w/.cache/x'\n`,
    files: { 'sub/f.txt': 'sub file\n' },
    out: /sub file[\s\S]*cached/,
  },
  {
    name: 'a target that resolves to / is refused with file:line:col',
    dockerfile: `FROM ${Base}\nRUN --mount=type=bind,target=. true\n`,
    fail: /Dockerfile:2:\d+: .*invalid mount target "\/"/,
  },
];

for (const r of rows) {
  test(r.name, () => {
    const ctx = context({ Dockerfile: r.dockerfile, ...(r.files ?? {}) });
    try {
      const res = tsbuild(['build', '--progress=plain', '--no-cache', ctx], { root });
      if (r.fail) {
        assert.is(res.code, 2, res.stderr);
        assert.match(res.stderr, r.fail);
        return;
      }
      ok(res);
      assert.match(res.stdout + res.stderr, r.out!);
    } finally {
      cleanup(ctx);
    }
  });
}

test.after(() => cleanup(root));
test.run();
