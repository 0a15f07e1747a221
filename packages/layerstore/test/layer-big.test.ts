// A big file round trip with flat memory: the evidence that layers stream. Runs in every suite at
// 512 MiB (1 MiB pieces, random and one repeated byte in turn: ~260 MB of gzip blob);
// TSBUILD_BIG_MIB=1024 (or more) for a bigger one, TSBUILD_BIG_DIR for where its files go.
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCipheriv } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeLayer, unpackLayer } from '../src/layer/index.js';
import { TempBlobs } from './helpers/temp-blobs.js';
import { describe } from './helpers/tree.js';

const MiB = 1 << 20;
const sizeMiB = Number(process.env.TSBUILD_BIG_MIB ?? 512);
// Growth of the peak RSS allowed over the whole round trip. Holding the file, the blob or even half
// of the blob in memory at once would exceed it by far.
const rssBound = 64 * MiB;
if (!Number.isInteger(sizeMiB) || sizeMiB < 512) {
  const what = `TSBUILD_BIG_MIB=${process.env.TSBUILD_BIG_MIB}`;
  throw new Error(`${what}: at least 512 (a smaller file cannot tell flat from not)`);
}
const vmhwm = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;

test(`${sizeMiB} MiB file: layer → unpack is identical, peak RSS stays flat`, async () => {
  const work = mkdtempSync(join(process.env.TSBUILD_BIG_DIR ?? tmpdir(), 'layer-big-'));
  try {
    mkdirSync(join(work, 'src'));
    const fd = openSync(join(work, 'src', 'big'), 'w');
    const ks = createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), Buffer.alloc(16));
    for (let i = 0; i < sizeMiB; i++) writeSync(fd, i % 2 ? ks.update(Buffer.alloc(MiB)) : Buffer.alloc(MiB, i & 0xff));
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
    const mb = (n: number) => `${(n / 1e6).toFixed(0)} MB`;
    console.log(
      `\n  ${sizeMiB} MiB: write ${writeS.toFixed(1)} s, unpack ${unpackS.toFixed(1)} s; ` +
        `VmHWM before ${mb(before)}, after write ${mb(afterWrite)}, after unpack ${mb(afterUnpack)}`,
    );
    assert.equal(describe(join(work, 'out')), describe(join(work, 'src')));
    assert.ok(layer.size > 2 * rssBound, `the blob (${layer.size} bytes) is bigger than the bound by far`);
    assert.ok(afterUnpack - before < rssBound, `peak RSS grew by ${((afterUnpack - before) / MiB).toFixed(0)} MiB`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test.run();
