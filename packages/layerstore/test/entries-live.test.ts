// A tree read while something else changes it (`live`: a container committed with --pause=false):
// a directory swapped for a symlink to a host directory, between the walk's steps, must not bring
// a host file into the layer. The walk is driven by hand, so the swap lands exactly between two
// steps: after the directory's entry, or after a file's entry and before its content is read.
import {
  closeSync,
  constants as fsc,
  mkdirSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mknod, S_IFIFO } from '@tsbuild/sys';
import { entriesFromDirectory, tarStream } from '../src/layer/index.js';
import type { Entry } from '../src/types.js';

const SECRET = 'host-secret-0123456789';
const MINE = 'container-own-content!'; // the same length: a size check alone would not catch the swap

function tree(): { root: string; up: string; host: string } {
  const root = mkdtempSync(join(tmpdir(), 'entries-live-'));
  const up = join(root, 'up');
  const host = join(root, 'host');
  mkdirSync(join(up, 'd'), { recursive: true });
  writeFileSync(join(up, 'd', 'f'), MINE);
  writeFileSync(join(up, 'a'), 'a');
  mkdirSync(host);
  writeFileSync(join(host, 'f'), SECRET);
  writeFileSync(join(host, 'key'), SECRET);
  return { root, up, host };
}

/** d becomes a symlink to the host directory (the original kept aside, as RENAME_EXCHANGE would). */
function swap(up: string, host: string): void {
  renameSync(join(up, 'd'), join(up, 'd.orig'));
  symlinkSync(host, join(up, 'd'));
}

async function tarText(entries: AsyncIterable<Entry>): Promise<string> {
  const out: Buffer[] = [];
  for await (const chunk of tarStream(entries)) out.push(Buffer.from(chunk));
  return Buffer.concat(out).toString('latin1');
}

const rows: [string, (path: string, type: string) => boolean][] = [
  ["after the directory's entry, before the walk enters it", (path, type) => path === 'd' && type === 'directory'],
  ["after a file's entry, before its content is read", (path) => path === 'd/f'],
];

for (const [when, at] of rows) {
  test(`live walk, directory swapped for a symlink to the host ${when}: no host file in the layer`, async () => {
    const { root, up, host } = tree();
    try {
      const seen: string[] = [];
      async function* swapping(): AsyncGenerator<Entry> {
        for await (const e of entriesFromDirectory(up, { live: true })) {
          seen.push(e.path);
          if (at(e.path, e.type)) swap(up, host);
          yield e;
        }
      }
      let text = '';
      let error: Error | undefined;
      try {
        text = await tarText(swapping());
      } catch (e) {
        error = e as Error;
      }
      assert.not.ok(text.includes(SECRET), 'a host file was read into the layer');
      assert.not.ok(seen.includes('d/key'), 'the walk listed the host directory');
      // Either the change is caught (a clear error) or the original content was read through its directory.
      if (error) assert.match(error.message, /changed while it was read/);
      else assert.ok(text.includes(MINE), 'the file the container wrote is in the layer');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}

// A file swapped, after its entry, for something that is not a regular file: a FIFO would block the
// commit's read forever with no writer, and with one feed the layer whatever it writes; a device node
// (a root container may mknod one) would feed it the host's device. Only a regular file's bytes are read.
const OTHER = 'bytes-from-a-fifo-0123'; // MINE's length, so that only the kind check can refuse them
const fifoRows: [string, boolean][] = [
  ['with a writer', true],
  ['without a writer (the read would block)', false],
];
for (const [name, writer] of fifoRows) {
  test(`live walk, a file swapped for a FIFO ${name} before its content is read: a clear error`, async () => {
    const { root, up } = tree();
    let wfd = -1;
    try {
      async function* swapping(): AsyncGenerator<Entry> {
        for await (const e of entriesFromDirectory(up, { live: true })) {
          if (e.path === 'd/f') {
            renameSync(join(up, 'd', 'f'), join(up, 'd', 'f.orig'));
            mknod(join(up, 'd', 'f'), S_IFIFO, 0o644);
            if (writer) {
              wfd = openSync(join(up, 'd', 'f'), fsc.O_RDWR | fsc.O_NONBLOCK);
              writeSync(wfd, OTHER);
            }
          }
          yield e;
        }
      }
      let text = '';
      let error: Error | undefined;
      try {
        text = await tarText(swapping());
      } catch (e) {
        error = e as Error;
      }
      assert.not.ok(text.includes(OTHER), "a FIFO's bytes were read into the layer");
      assert.ok(error, 'the walk went on past a file that became a FIFO');
      assert.match(error.message, /d\/f: .*changed while it was read/);
    } finally {
      if (wfd >= 0) closeSync(wfd);
      rmSync(root, { recursive: true, force: true });
    }
  });
}

test('live walk of an unchanging tree gives the same entries as a plain walk', async () => {
  const { root, up } = tree();
  try {
    const list = async (live: boolean) => {
      const out: string[] = [];
      for await (const e of entriesFromDirectory(up, { live })) out.push(`${e.path} ${e.type} ${e.mode}`);
      return out;
    };
    assert.equal(await list(true), await list(false));
    assert.is(await tarText(entriesFromDirectory(up, { live: true })), await tarText(entriesFromDirectory(up)));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
