// The content hashes of a COPY's context sources (its cache key) are read after the context is listed: a
// directory swapped for a symlink to a host directory in between must not have the host's files read (their
// digests would enter the key and the stat cache, and a link to a FIFO or /dev/zero would hang the build). The
// files are opened beneath the context's fd with no symlink on the way (openat2 in JS, `tsbuild-walk --sha256
// ROOT` for many files), checked to be the regular files listed: the hash fails, naming the file. The swap is
// made between the listing (BuildContext.open) and the hashing (match, treeDigest), by hand.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildContext } from '../src/context/context.js';
import { nativeWalker } from '../src/context/walk.js';

const SECRET = 'host-secret-0123456789';
const MINE = 'context-own-content!!!'; // the same length

const rows: { name: string; files: number; source: string; names: RegExp; native?: boolean }[] = [
  { name: 'a single file', files: 1, source: 'd/f0', names: /d\/f0/ },
  { name: 'a directory of a few files (hashed in JS)', files: 3, source: 'd', names: /d\/f\d+/ },
  { name: 'a directory of 100 files (tsbuild-walk --sha256)', files: 100, source: 'd', names: /d\/f\d+/, native: true },
];

for (const row of rows) {
  test(`${row.name}: d swapped for a symlink to the host after listing: the hash fails, naming the file`, async () => {
    if (row.native) assert.ok(nativeWalker(), 'tsbuild-walk is built');
    const base = mkdtempSync(join(tmpdir(), 'context-swap-'));
    try {
      const ctx = join(base, 'ctx');
      const host = join(base, 'host');
      mkdirSync(join(ctx, 'd'), { recursive: true });
      mkdirSync(host);
      for (let i = 0; i < row.files; i++) {
        writeFileSync(join(ctx, 'd', `f${i}`), MINE);
        writeFileSync(join(host, `f${i}`), SECRET);
      }
      const c = await BuildContext.open(ctx, undefined, join(base, 'cache'));
      renameSync(join(ctx, 'd'), join(ctx, 'd.orig'));
      symlinkSync(host, join(ctx, 'd'));
      let error: Error | undefined;
      try {
        const [e] = await c.match(row.source);
        if (e.kind === 'dir') await c.treeDigest(e, undefined);
      } catch (err) {
        error = err as Error;
      }
      assert.ok(error, 'the files were hashed through the symlink');
      assert.match(error.message, row.names);
      assert.match(error.message, /could not be read: it changed during the build/);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
}

test.run();
