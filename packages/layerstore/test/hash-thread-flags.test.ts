// A hashing thread's isolate puts V8's --semi-space-growth-factor back to 2 for the whole process (V8's
// Heap::ConfigureHeap): the young generation the CLI keeps small (builder's src/context/young.ts) would grow to
// 16 MiB semi-spaces again after the first large layer. ThreadHash sets the flags the process named again once
// its isolate is up. Each case runs in a child process of its own, where the young generation starts at its
// first size: flags set, a thread started and used, then short-lived objects that partly survive.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const hashThread = pathToFileURL(join(fileURLToPath(new URL('.', import.meta.url)), '..', 'src', 'hash-thread.js'));

const dir = mkdtempSync(join(tmpdir(), 'tsbuild-thread-flags-'));

function newSpaceAfter(named: boolean): number {
  const script = `
    import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
    import { ThreadHash } from ${JSON.stringify(hashThread.href)};
    setFlagsFromString('--semi-space-growth-factor=1');
    if (${named}) globalThis[Symbol.for('tsbuild.v8-flags')] = '--semi-space-growth-factor=1';
    const t = new ThreadHash();
    await t.update(Buffer.alloc(1 << 20, 1));
    await t.digest();
    let keep = [];
    for (let i = 0; i < 2e6; i++) {
      const o = { i, s: 'x' + i };
      if (i % 3 === 0) keep.push(o);
      if (keep.length > 200000) keep = [];
    }
    const ns = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    process.stdout.write(String(ns.space_size));
  `;
  // A file, not -e with --input-type=module: a worker inherits the flag, and the thread's CommonJS source fails.
  const file = join(dir, `case-${named}.mjs`);
  writeFileSync(file, script);
  return Number(execFileSync(process.execPath, [file], { encoding: 'utf8' }));
}

const cases: [name: string, named: boolean, small: boolean][] = [
  ['flags named in the global: set again, the young generation stays small', true, true],
  ['no flags named: the thread put the factor back, and it grew', false, false],
];
for (const [name, named, small] of cases)
  test(`a hashing thread and the process's V8 flags: ${name}`, () => {
    const size = newSpaceAfter(named);
    const MiB = 1 << 20;
    if (small) assert.ok(size <= 2 * MiB, `new space ${size / MiB} MiB`);
    else assert.ok(size > 2 * MiB, `new space ${size / MiB} MiB`);
  });

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
