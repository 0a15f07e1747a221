// tmp/ carries ext4's top-directory flag once the store hands out a scratch dir, so that scratch
// trees are placed away from recently freed inodes (see @tsbuild/sys's topdir.ts for why). Run on
// filesystems the test makes, not on whatever the temp dir happens to be: a small ext4 image on a
// loop device (which has the flag) and a tmpfs (which has not: harmless there).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { markTopDir } from '@tsbuild/sys';
import { Store } from '../src/store.js';

const base = mkdtempSync(join(tmpdir(), 'topdir-test-'));
const mounted: string[] = [];
function cleanup(): void {
  for (let m = mounted.pop(); m; m = mounted.pop()) execFileSync('umount', [m]);
  rmSync(base, { recursive: true, force: true });
}
process.on('exit', cleanup); // also when a mount fails part way
// An interrupted run (Ctrl-C: the runner sends SIGTERM to each file's group) must not leave a loop mount behind.
process.once('SIGTERM', () => process.exit(143));
test.after(cleanup);

/** A fresh filesystem of `kind`, mounted under base; unmounted (and its loop device freed) at the end. */
function filesystem(kind: 'ext4' | 'tmpfs'): string {
  const dir = join(base, kind);
  mkdirSync(dir);
  if (kind === 'tmpfs') {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', dir]);
  } else {
    const image = join(base, 'ext4.img');
    execFileSync('truncate', ['-s', '32M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', image]);
    // mount -o loop attaches a free loop device and sets autoclear: umount releases it.
    execFileSync('mount', ['-o', 'loop', image, dir]);
  }
  mounted.push(dir);
  return dir;
}

const flags = (dir: string): string => execFileSync('lsattr', ['-d', dir]).toString().split(' ')[0];

test('on ext4: store.tempDir marks tmp/ as a top directory, once a scratch dir is asked for', async () => {
  const store = await Store.open(join(filesystem('ext4'), 'store'));
  const probe = join(store.root, 'probe');
  mkdirSync(probe);
  assert.ok(markTopDir(probe), 'ext4 has the flag');
  assert.ok(flags(probe).includes('T'), 'markTopDir sets it');
  assert.not.ok(flags(store.tmpDir).includes('T'), 'not before a scratch dir is asked for');
  const dir = await store.tempDir('copy-');
  assert.ok(flags(store.tmpDir).includes('T'), 'set by tempDir');
  assert.not.ok(flags(dir).includes('T'), 'not inherited by the scratch dir itself');
});

test('on tmpfs (no such flag): markTopDir says so, and store.tempDir works all the same', async () => {
  const store = await Store.open(join(filesystem('tmpfs'), 'store'));
  const probe = join(store.root, 'probe');
  mkdirSync(probe);
  assert.is(markTopDir(probe), false);
  const dir = await store.tempDir('copy-');
  assert.ok(dir.startsWith(store.tmpDir));
});

test.run();
