// A build whose new layers cannot be adopted as snapshots fails, and a failed build tags nothing: the
// adoption runs alongside the image's write, and the tags wait for it. The failure is made by
// making snapshots/ immutable (chattr +i) once the base's snapshot is in it: the RUN step still runs
// (its base is there), and the adoption of its diff cannot take the snapshot's lock.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { have, skip } from '@tsbuild/testkit';
import { Base, cleanup, context, ok, storeWithBase, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const t = (args: string[]) => tsbuild(args, { root });
const snapshots = join(root, 'snapshots');
const chattr = (flag: string) => spawnSync('chattr', [flag, snapshots], { encoding: 'utf8' });

test.after(() => {
  chattr('-i');
  cleanup(root);
});

test('a build whose layer cannot be adopted fails and tags nothing', () => {
  if (!have('chattr')) return skip('chattr (e2fsprogs) is not installed');
  // The base's snapshot first, so that the RUN step below needs nothing new in snapshots/.
  ok(t(['run', '--rm', '--network', 'none', Base, 'true']));
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo adopted > /x\n` });
  const made = chattr('+i');
  if (made.status !== 0) return skip(`this filesystem has no immutable flag: ${made.stderr.trim()}`);
  let r;
  try {
    r = t(['build', '--network', 'none', '-t', 'adopt-fail:1', ctx]);
  } finally {
    chattr('-i');
  }
  assert.is.not(r.code, 0, `the build succeeded: ${r.stderr}`);
  assert.match(r.stderr, /EPERM/);
  assert.not.match(ok(t(['images'])).stdout, /adopt-fail/, 'the failed build tagged its image');
  cleanup(ctx);
});

test.run();
