// A 1 GiB file round trip with flat memory. Optional: TSBUILD_BIG_TESTS=1.
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCipheriv } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeLayer, unpackLayer } from '../src/layer/index.js';
import { TempBlobs } from './helpers/temp-blobs.js';
import { describe } from './helpers/tree.js';

const enabled = process.env.TSBUILD_BIG_TESTS === '1';
const vmhwm = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;

test('1 GiB file: layer → unpack is identical, peak RSS stays flat', async () => {
  if (!enabled) return;
  const work = mkdtempSync(join(process.env.TSBUILD_BIG_DIR ?? tmpdir(), 'layer-big-'));
  try {
    mkdirSync(join(work, 'src'));
    const fd = openSync(join(work, 'src', 'big'), 'w');
    const ks = createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), Buffer.alloc(16));
    for (let i = 0; i < 1024; i++) writeSync(fd, i % 2 ? ks.update(Buffer.alloc(1 << 20)) : Buffer.alloc(1 << 20, i & 0xff));
    closeSync(fd);
    const before = vmhwm();
    const blobs = new TempBlobs(join(work, 'blobs'));
    let t = performance.now();
    const layer = await writeLayer(blobs, join(work, 'src'), { compression: 'gzip' });
    const writeS = (performance.now() - t) / 1000;
    const afterWrite = vmhwm();
    mkdirSync(join(work, 'out'));
    t = performance.now();
    await unpackLayer(blobs.open(layer.digest), layer.mediaType, join(work, 'out'), { diffID: layer.diffID });
    const unpackS = (performance.now() - t) / 1000;
    const afterUnpack = vmhwm();
    console.log(`\n  1 GiB: write ${writeS.toFixed(1)} s, unpack ${unpackS.toFixed(1)} s; VmHWM before ${(before / 1e6).toFixed(0)} MB, after write ${(afterWrite / 1e6).toFixed(0)} MB, after unpack ${(afterUnpack / 1e6).toFixed(0)} MB`);
    assert.equal(describe(join(work, 'out')), describe(join(work, 'src')));
    assert.ok(afterUnpack - before < 200e6, `peak RSS grew by ${((afterUnpack - before) / 1e6).toFixed(0)} MB`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test.run();
