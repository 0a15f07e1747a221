// RootView reads a stack of snapshot dirs as overlayfs shows them. A lower layer may hold a symlink
// to a host directory where a higher layer has a real directory (a COPY --parents over an image's
// link makes one without the opaque mark): no read of the view may go through that link onto the
// host. Each row builds a two-layer stack and a "host" dir, and lists or stats paths below the link.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RootView } from '@tsbuild/sandbox';
import { isOpaque } from '@tsbuild/layerstore';

const base = mkdtempSync(join(tmpdir(), 'tsbuild-rootview-'));
process.on('exit', () => rmSync(base, { recursive: true, force: true }));
let n = 0;

/** lower: a -> host; upper: a/sub/ (a real dir, not opaque) with `mine`; host: sub/leak, sub/deeper/x. */
function stack(): { view: RootView; host: string } {
  const d = join(base, `${++n}`);
  const [lower, upper, host] = ['lower', 'upper', 'host'].map((x) => join(d, x)) as [string, string, string];
  mkdirSync(join(host, 'sub', 'deeper'), { recursive: true });
  writeFileSync(join(host, 'sub', 'leak'), 'HOST\n');
  writeFileSync(join(host, 'sub', 'deeper', 'x'), 'HOST\n');
  mkdirSync(lower, { recursive: true });
  symlinkSync(host, join(lower, 'a'));
  mkdirSync(join(upper, 'a', 'sub'), { recursive: true });
  writeFileSync(join(upper, 'a', 'sub', 'mine'), 'image\n');
  return { view: new RootView([upper, lower], isOpaque), host };
}

const rows: { name: string; run: (v: RootView) => Promise<unknown>; want: unknown }[] = [
  { name: 'readdir of a dir below the link lists only the image', run: (v) => v.readdir('/a/sub'), want: ['mine'] },
  {
    name: 'lstat of a host-only name below the link is absent',
    run: async (v) => (await v.lstat('/a/sub/leak'))?.host,
    want: undefined,
  },
  {
    name: 'stat of a host-only dir below the link is absent',
    run: async (v) => (await v.stat('/a/sub/deeper'))?.host,
    want: undefined,
  },
  { name: 'readdir of a host-only dir below the link is empty', run: (v) => v.readdir('/a/sub/deeper'), want: [] },
  {
    name: 'readFile of a host-only file below the link is absent',
    run: (v) => v.readFile('/a/sub/leak'),
    want: undefined,
  },
];

for (const r of rows) {
  test(r.name, async () => {
    const { view } = stack();
    assert.equal(await r.run(view), r.want);
  });
}

test.run();
