// tmp/ carries ext4's top-directory flag once the store hands out a scratch dir, so that scratch
// trees are placed away from recently freed inodes (see src/sys/topdir.ts for why).
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { markTopDir } from '../src/sys/topdir.js';
import { tempStore } from './storekit.js';

const flags = (dir: string): string => execFileSync('lsattr', ['-d', dir]).toString().split(' ')[0]!;

test('store.tempDir marks tmp/ as a top directory (where the filesystem has the flag)', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const probe = join(store.root, 'probe');
    mkdirSync(probe);
    if (!markTopDir(probe)) {
      console.log(`  (skipped: ${store.root} has no top-directory flag)`);
      return;
    }
    assert.ok(flags(probe).includes('T'), 'markTopDir sets it');
    assert.not.ok(flags(store.tmpDir).includes('T'), 'not before a scratch dir is asked for');
    const dir = await store.tempDir('copy-');
    assert.ok(flags(store.tmpDir).includes('T'), 'set by tempDir');
    assert.not.ok(flags(dir).includes('T'), 'not inherited by the scratch dir itself');
  } finally {
    await cleanup();
  }
});

test.run();
