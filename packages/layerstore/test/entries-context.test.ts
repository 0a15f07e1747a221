// A build context is untrusted: its owner can change it while a build reads it. Its entries are listed first
// (a walk, or the builder's listing turned into fileEntry()s) and their contents read later, when the layer is
// written. A directory swapped for a symlink in between must not lead that read out of the context: every read
// opens each component beneath its parent's fd without following a symlink. The steps are driven by hand, so
// the swap lands exactly between the listing and the write.
import { mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { entriesFromDirectory, fileEntry, tarStream } from '../src/layer/index.js';
import type { Entry } from '../src/types.js';

const SECRET = 'host-secret-0123456789';
const MINE = 'context-own-content!!!'; // the same length: a size check alone would not catch the swap

interface Tree {
  root: string;
  ctx: string;
  host: string;
}

/** ctx/{a, d/f, d/e/g} and, outside it, host/{f, e/g} holding the secret (same names, same sizes). */
function tree(): Tree {
  const root = mkdtempSync(join(tmpdir(), 'entries-context-'));
  const ctx = join(root, 'ctx');
  const host = join(root, 'host');
  mkdirSync(join(ctx, 'd', 'e'), { recursive: true });
  writeFileSync(join(ctx, 'a'), 'a');
  writeFileSync(join(ctx, 'd', 'f'), MINE);
  writeFileSync(join(ctx, 'd', 'e', 'g'), MINE);
  mkdirSync(join(host, 'e'), { recursive: true });
  writeFileSync(join(host, 'f'), SECRET);
  writeFileSync(join(host, 'e', 'g'), SECRET);
  return { root, ctx, host };
}

/** Context-relative `rel` becomes a symlink to `to` (the original kept aside, as a RENAME_EXCHANGE would). */
function swap(ctx: string, rel: string, to: string): void {
  renameSync(join(ctx, rel), join(ctx, `${rel}.orig`));
  symlinkSync(to, join(ctx, rel));
}

async function tarText(entries: Iterable<Entry>): Promise<string> {
  const out: Buffer[] = [];
  for await (const chunk of tarStream(entries)) out.push(Buffer.from(chunk));
  return Buffer.concat(out).toString('latin1');
}

/** The listing, as the layer writer gets it: from a walk of the directory, or made by the builder. */
const listings: [string, (t: Tree) => Promise<Entry[]>][] = [
  [
    'a walk of the directory',
    async (t) => {
      const out: Entry[] = [];
      for await (const e of entriesFromDirectory(t.ctx)) out.push(e);
      return out;
    },
  ],
  [
    "fileEntry()s of the builder's listing",
    async (t) =>
      ['a', 'd/e/g', 'd/f'].map((rel) => {
        const host = join(t.ctx, rel);
        const st = statSync(host, { bigint: true });
        const meta = { path: rel, mode: 0o644, uid: 0, gid: 0, mtime: 0, xattrs: undefined };
        return fileEntry(meta, host, Number(st.size), t.ctx, st.ino);
      }),
  ],
];

/** What changes between the listing and the write, and the file the error must name. */
const swaps: [string, (t: Tree) => void, RegExp][] = [
  ['a directory becomes a symlink to a host directory', (t) => swap(t.ctx, 'd', t.host), /\bd\/(f|e\/g)\b/],
  ['a nested directory becomes a symlink', (t) => swap(t.ctx, 'd/e', join(t.host, 'e')), /\bd\/e\/g\b/],
  ['a file becomes a symlink to a host file', (t) => swap(t.ctx, 'd/f', join(t.host, 'f')), /\bd\/f\b/],
];

for (const [listed, list] of listings) {
  for (const [what, change, names] of swaps) {
    test(`${listed}, then ${what}: the write fails naming the file, no host content`, async () => {
      const t = tree();
      try {
        const entries = await list(t);
        change(t);
        let text = '';
        let error: Error | undefined;
        try {
          text = await tarText(entries);
        } catch (e) {
          error = e as Error;
        }
        assert.not.ok(text.includes(SECRET), 'a host file was read into the layer');
        assert.ok(error, 'the layer was written through the symlink');
        assert.match(error.message, names);
        assert.match(error.message, /changed while it was read/);
      } finally {
        rmSync(t.root, { recursive: true, force: true });
      }
    });
  }
}

test('fileEntry() of a listed file replaced by another file (another inode): refused, not read', async () => {
  const t = tree();
  try {
    const host = join(t.ctx, 'd', 'f');
    const st = statSync(host, { bigint: true });
    const e = fileEntry({ path: 'd/f', mode: 0o644, uid: 0, gid: 0, mtime: 0 }, host, Number(st.size), t.ctx, st.ino);
    renameSync(host, `${host}.orig`);
    writeFileSync(host, SECRET);
    let error: Error | undefined;
    try {
      await tarText([e]);
    } catch (err) {
      error = err as Error;
    }
    assert.ok(error, 'a file the listing did not see was read');
    assert.match(error.message, /d\/f: .*changed while it was read/);
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test('an unchanged context: one layer from the walk and from the fileEntry()s, read beneath the root', async () => {
  const t = tree();
  try {
    const walked = await tarText(await listings[0][1](t));
    assert.ok(walked.includes(MINE));
    const files = (await listings[1][1](t)).map((e) => e.path);
    assert.equal(files, ['a', 'd/e/g', 'd/f']);
    // Many files in many directories, out of order too: the directory fds are reopened as needed.
    const entries = await listings[1][1](t);
    const text = await tarText([entries[2], entries[0], entries[1], entries[2]]);
    assert.is(text.split(MINE).length - 1, 3);
  } finally {
    rmSync(t.root, { recursive: true, force: true });
  }
});

test.run();
