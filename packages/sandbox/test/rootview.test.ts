// RootView over a stack of layer directories: a path absent from a layer is looked for lower down,
// but a layer directory that is itself gone (removed while in use) is an error, never a silent
// fall-through to the layer below (which would make COPY --from read, and cache, the wrong file).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LayerMissingError, RootView, type ViewEntry } from '../src/index.js';
import { VIEW_CACHE_MAX } from '../src/rootfs/rootview.js';

function stack() {
  const dir = mkdtempSync(join(tmpdir(), 'rootview-'));
  const lower = join(dir, 'lower');
  const upper = join(dir, 'upper');
  mkdirSync(join(lower, 'etc'), { recursive: true });
  mkdirSync(join(upper, 'etc'), { recursive: true });
  writeFileSync(join(lower, 'etc', 'conf'), 'old\n');
  writeFileSync(join(upper, 'etc', 'conf'), 'new\n');
  writeFileSync(join(lower, 'etc', 'only-lower'), 'lower\n');
  return { dir, lower, upper, view: new RootView([upper, lower], () => false) };
}

const reads: [string, (v: RootView) => Promise<unknown>][] = [
  ['readFile', (v) => v.readFile('/etc/conf')],
  ['lstat', (v) => v.lstat('/etc/conf')],
  ['readdir', (v) => v.readdir('/etc')],
  ['lstat of /', (v) => v.lstatCanonical('/')],
];

test('absent in the upper layer: found below', async () => {
  const { dir, view } = stack();
  assert.is((await view.readFile('/etc/conf'))?.toString(), 'new\n');
  assert.is((await view.readFile('/etc/only-lower'))?.toString(), 'lower\n');
  assert.equal(await view.readdir('/etc'), ['conf', 'only-lower']);
  assert.is(await view.lstat('/nothing'), undefined);
  rmSync(dir, { recursive: true, force: true });
});

test("a fixed view (a build's layers) looks a path up once; an open one (a container's) each time", async () => {
  const { dir, upper, lower } = stack();
  const fixed = new RootView([upper, lower], () => false, true);
  const open = new RootView([upper, lower], () => false);
  assert.ok(await fixed.lstat('/etc/conf'));
  assert.ok(await open.lstat('/etc/conf'));
  rmSync(join(upper, 'etc', 'conf'));
  rmSync(join(lower, 'etc', 'conf'));
  assert.ok(await fixed.lstat('/etc/conf'), 'remembered');
  assert.is(await open.lstat('/etc/conf'), undefined);
  rmSync(dir, { recursive: true, force: true });
});

test('a fixed view walked over many paths remembers a bounded number of them (memory flat)', async () => {
  const { dir, upper, lower } = stack();
  const view = new RootView([upper, lower], () => false, true);
  // A walk asks each path once (COPY --from's listing, a bind mount's flatten): absent paths cost the same entry.
  for (let i = 0; i < 3 * VIEW_CACHE_MAX; i++) await view.lstatCanonical(`/etc/f${i}`);
  const known = (view as unknown as { known: Map<string, unknown> }).known;
  assert.ok(known.size <= VIEW_CACHE_MAX, `${known.size} lookups remembered`);
  // What is looked up again right after is still remembered.
  await view.lstatCanonical('/etc/conf');
  rmSync(join(upper, 'etc', 'conf'));
  assert.is((await view.lstatCanonical('/etc/conf'))?.host, join(upper, 'etc', 'conf'));
  rmSync(dir, { recursive: true, force: true });
});

for (const [name, read] of reads) {
  test(`a vanished layer directory is an error (${name}), not the layer below`, async () => {
    const { dir, upper, view } = stack();
    rmSync(upper, { recursive: true });
    const named = (e: unknown) => e instanceof LayerMissingError && e.message.includes(upper);
    await rejects(() => read(view), named);
    rmSync(dir, { recursive: true, force: true });
  });
}

/**
 * A running container's upper dir changes under the view (exec's user lookup reads it): each row replaces
 * something between readFile's lookup and its open, which a subclass makes deterministic. The host file
 * (outside every layer) must never be read, and nothing may wait on a FIFO.
 */
const swaps: [string, (upper: string, host: string) => void][] = [
  [
    'the parent directory becomes a symlink to a host directory',
    (upper, host) => {
      renameSync(join(upper, 'etc'), join(upper, 'etc.old'));
      symlinkSync(host, join(upper, 'etc'));
    },
  ],
  [
    'the file becomes a symlink to a host file',
    (upper, host) => {
      rmSync(join(upper, 'etc', 'conf'));
      symlinkSync(join(host, 'conf'), join(upper, 'etc', 'conf'));
    },
  ],
  [
    'the file becomes a FIFO',
    (upper) => {
      rmSync(join(upper, 'etc', 'conf'));
      execFileSync('mkfifo', [join(upper, 'etc', 'conf')]);
    },
  ],
];

for (const [name, swap] of swaps) {
  test(`readFile of a file replaced after its lookup: ${name}: never the host's`, async () => {
    const { dir, lower, upper } = stack();
    const host = join(dir, 'host');
    mkdirSync(host);
    writeFileSync(join(host, 'conf'), 'host secret\n');
    let swapped = false;
    class Changing extends RootView {
      override async stat(path: string): Promise<ViewEntry | undefined> {
        const e = await super.stat(path);
        if (!swapped) {
          swapped = true;
          swap(upper, host);
        }
        return e;
      }
    }
    const got = await new Changing([upper, lower], () => false).readFile('/etc/conf').catch((e: Error) => e);
    assert.ok(swapped);
    assert.not.ok(got instanceof Buffer && got.toString().includes('host secret'), `read the host's file`);
    rmSync(dir, { recursive: true, force: true });
  });
}

test.run();
