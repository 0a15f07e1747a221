// A build context changed while the build reads it: after a step's context sources are listed and hashed, and
// before the step reads them, the directory `d` is swapped for a symlink to a host directory holding files of the
// same names and sizes. Every reader of the context (the copier and the layer writer, a COPY placed in JS, a
// single file, ADD of a local archive, a RUN bind mount read-only or read-write) opens each component beneath the
// context's fd without following a symlink: the build fails naming the file, and no host byte reaches the image
// or the RUN. The build stops itself at that point (TSBUILD_TEST_BUILD_STOP=context-read, builder/src/trace.ts),
// the test swaps, then lets it go on: no timing involved.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, procState, storeWithBase, tempDir, tsbuildAsync } from './helpers/cli.js';

const root = storeWithBase();
const SECRET = 'HOST-SECRET-0123456789';
const MINE = 'context-own-content!!!'; // the same length: a size check alone would not catch the swap

/** A file of d (its files are read in name order: a.tar first). */
const inD = /\bd\/(f|a\.tar)\b/;
/** `names`: what the error names (the file, or the directory the copier could not open); `changed`: how it says. */
const rows: { name: string; dockerfile: string; names: RegExp; changed?: RegExp }[] = [
  {
    name: 'COPY of a directory (the copier, the layer from the context)',
    dockerfile: 'COPY d/ /d/',
    names: /\bd\/[fd]\b/,
    changed: /changed while it was read|cannot open the directory in the build context \(a symlink or file is there/,
  },
  { name: 'COPY --chown of a directory (placed in JS)', dockerfile: 'COPY --chown=1:1 d/ /d/', names: inD },
  { name: 'COPY of a single file', dockerfile: 'COPY d/f /f', names: /d\/f/ },
  { name: 'ADD of a local tar archive', dockerfile: 'ADD d/a.tar /x/', names: /d\/a\.tar/ },
  {
    name: 'RUN with a read-only bind mount of a directory',
    dockerfile: 'RUN --mount=type=bind,source=d,target=/m cat /m/f',
    names: inD,
  },
  {
    name: 'RUN with a read-write bind mount of a directory',
    dockerfile: 'RUN --mount=type=bind,source=d,target=/m,rw cat /m/f',
    names: inD,
  },
];

/** A tar archive holding member `m` with `content`, written at `path`. */
function tarOf(path: string, content: string): void {
  const dir = tempDir('tar');
  writeFileSync(join(dir, 'm'), content);
  const r = spawnSync('tar', ['-cf', path, '-C', dir, 'm'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  cleanup(dir);
}

for (const row of rows) {
  test(`${row.name}: d swapped for a symlink to the host after listing: the build fails, no host content`, async () => {
    const ctx = context({ Dockerfile: `FROM ${Base}\n${row.dockerfile}\n`, 'd/f': MINE });
    tarOf(join(ctx, 'd', 'a.tar'), MINE);
    const host = tempDir('host');
    mkdirSync(host, { recursive: true });
    writeFileSync(join(host, 'f'), SECRET);
    tarOf(join(host, 'a.tar'), SECRET);
    const env = { TSBUILD_TEST_BUILD_STOP: 'context-read' };
    const child = tsbuildAsync(['build', '--progress=plain', '--no-cache', '-t', 'swap:1', ctx], { root, env });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const closed = new Promise<number | null>((r) => child.on('close', r));
    for (
      const end = Date.now() + 120_000;
      procState(child.pid!) !== 'T' && child.exitCode === null && Date.now() < end;
    )
      await new Promise((r) => setTimeout(r, 20));
    assert.is(procState(child.pid!), 'T', `the build did not stop before reading the context:\n${out}`);
    renameSync(join(ctx, 'd'), join(ctx, 'd.orig'));
    symlinkSync(host, join(ctx, 'd'));
    child.kill('SIGCONT');
    const code = await closed;
    assert.not.match(out, new RegExp(SECRET), `the host file was read:\n${out}`);
    assert.not.match(out, /\n\s+at .+:\d+:\d+\)?\n/, `a stack trace:\n${out}`);
    assert.is.not(code, 0, `the build read through the symlink:\n${out.slice(-2000)}`);
    assert.match(out, row.names, `the error does not name the file:\n${out.slice(-1500)}`);
    assert.match(out, row.changed ?? /changed while it was read/, `no clear error:\n${out.slice(-1500)}`);
    cleanup(ctx, host);
  });
}

test.after(() => cleanup(root));
test.run();
