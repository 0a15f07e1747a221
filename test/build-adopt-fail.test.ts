// A build whose new layers cannot be adopted as snapshots fails, and a failed build tags nothing: the
// adoption runs alongside the image's write, and the tags wait for it. The failure is made by
// making snapshots/ a read-only bind mount of itself once the base's snapshot is in it (any filesystem,
// tmpfs included): the RUN step still runs (its base is there), and the adoption of its diff cannot
// take the snapshot's lock.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const t = (args: string[]) => tsbuild(args, { root });
const snapshots = join(root, 'snapshots');
const mount = (...args: string[]) => spawnSync('mount', args, { encoding: 'utf8' });
const readOnly = () => {
  const bind = mount('--bind', snapshots, snapshots);
  if (bind.status !== 0) return bind;
  return mount('-o', 'remount,bind,ro', snapshots);
};
const writable = () => spawnSync('umount', [snapshots]).status === 0;

test.after(() => {
  while (writable());
  cleanup(root);
});

test('a build whose layer cannot be adopted fails and tags nothing', () => {
  // The base's snapshot first, so that the RUN step below needs nothing new in snapshots/.
  ok(t(['run', '--rm', '--network', 'none', Base, 'true']));
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo adopted > /x\n` });
  let r;
  try {
    const made = readOnly();
    assert.is(made.status, 0, `mount: ${made.stderr}`);
    r = t(['build', '--network', 'none', '-t', 'adopt-fail:1', ctx]);
  } finally {
    while (writable());
  }
  assert.is.not(r.code, 0, `the build succeeded: ${r.stderr}`);
  assert.match(r.stderr, /EROFS|read-only/);
  assert.not.match(ok(t(['images'])).stdout, /adopt-fail/, 'the failed build tagged its image');
  cleanup(ctx);
});

test.run();
