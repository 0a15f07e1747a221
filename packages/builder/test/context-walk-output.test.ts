// tsbuild-walk's output goes to unnamed files in the temp directory. Where such a file cannot take it
// (a full temp filesystem, a file size limit), the walk is not lost: it runs again through pipes, and
// what the build gets is what an unhindered walker answers. Here a file size limit stands in for the full
// disk (the walker is killed by SIGXFSZ, or its writes fail, as with ENOSPC), which pipes are not bound by.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listContext, nativeWalker, runWalker } from '../src/context/walk.js';
import { sha256NativeRaw } from '../src/context/filehash.js';
import { skip } from '@tsbuild/testkit';

const base = mkdtempSync(join(tmpdir(), 'tsbuild-walk-output-'));

/** tsbuild-walk that may write no file bigger than 512 bytes (its answer through a pipe is not limited). */
function limitedWalker(real: string): string {
  const w = join(base, 'limited-walk');
  writeFileSync(w, `#!/bin/sh\nulimit -f 1\nexec '${real}' "$@"\n`, { mode: 0o755 });
  return w;
}

function context(): string {
  const ctx = join(base, 'ctx');
  for (let d = 0; d < 10; d++) {
    mkdirSync(join(ctx, `dir${d}`), { recursive: true });
    for (let f = 0; f < 30; f++) writeFileSync(join(ctx, `dir${d}`, `file-${f}.txt`), `${d}/${f}`);
  }
  return ctx;
}

test('a listing whose output file cannot be written is listed through pipes, whole', async () => {
  const real = nativeWalker();
  if (!real) return skip('tsbuild-walk is not built');
  const ctx = context();
  const whole = await listContext(ctx, 100_000, [], real);
  const limited = await listContext(ctx, 100_000, [], limitedWalker(real));
  assert.ok(whole.buf.length > 4096, `${whole.buf.length} bytes: more than the limit`);
  assert.is(whole.entryCount(), 310);
  assert.is(limited.entryCount(), whole.entryCount());
});

test('content hashes whose output file cannot be written come through pipes, all of them', async () => {
  const real = nativeWalker();
  if (!real) return skip('tsbuild-walk is not built');
  const ctx = context();
  const paths = Buffer.from(
    Array.from({ length: 300 }, (_, i) => `${join(ctx, `dir${i % 10}`, `file-${Math.floor(i / 10)}.txt`)}\0`).join(''),
  );
  const whole = await sha256NativeRaw(real, paths);
  const limited = await sha256NativeRaw(limitedWalker(real), paths);
  assert.is(whole.length, 300 * 33);
  assert.ok(limited.equals(whole));
});

// The paths to hash as pieces made while the walker reads them (tree.ts: 1 MiB each), split anywhere, even inside
// a path; iterated again when the walker runs a second time through pipes.
const pieceCases: [name: string, size: number][] = [
  ['one piece', Infinity],
  ['pieces that split paths', 97],
  ['a byte at a time', 1],
];
for (const [name, size] of pieceCases)
  test(`content hashes of paths given as pieces are those of the paths given whole: ${name}`, async () => {
    const real = nativeWalker();
    if (!real) return skip('tsbuild-walk is not built');
    const ctx = context();
    const paths = Buffer.from(
      Array.from({ length: 300 }, (_, i) => `${join(ctx, `dir${i % 10}`, `file-${Math.floor(i / 10)}.txt`)}\0`).join(
        '',
      ),
    );
    let made = 0;
    const pieces: Iterable<Buffer> = {
      *[Symbol.iterator]() {
        for (let at = 0; at < paths.length; at += Math.min(size, paths.length)) {
          made++;
          yield paths.subarray(at, Math.min(at + size, paths.length));
        }
      },
    };
    const whole = await sha256NativeRaw(real, paths);
    assert.ok(whole.equals(await sha256NativeRaw(real, pieces, 300)));
    const once = made;
    assert.ok(whole.equals(await sha256NativeRaw(limitedWalker(real), pieces, 300)));
    assert.ok(made > 2 * once - 1, `the pieces were made again for the second walk (${made} after ${once})`);
  });

test("a walker's own complaint is still said as it is", async () => {
  const real = nativeWalker();
  if (!real) return skip('tsbuild-walk is not built');
  const err = await runWalker(limitedWalker(real), [join(base, 'nothere')]).then(
    () => 'listed',
    (e: Error) => e.message,
  );
  assert.is(err, `cannot open ${join(base, 'nothere')}: No such file or directory`);
});

test.after(() => rmSync(base, { recursive: true, force: true }));
test.run();
