// --cache-to type=inline: the image's own cache records carried in its config, pushed with it to a
// real registry (docker-registry), read by skopeo, and used by an empty store through `--cache-from REF`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '@tsbuild/testkit';
import { cleanup, context, ok, repo, tsbuild, tempDirs } from './helpers/cli.js';
import { inspect, sh } from './helpers/image.js';
import { steps } from './helpers/progress.js';

const { temp, dirs } = tempDirs();
let reg: TestRegistry;
test.before(async () => {
  reg = await startRegistry();
});
test.after(async () => {
  await reg?.stop();
  cleanup(...dirs);
});

// The base comes from the context, so an empty store can take every step from the image's records;
// the side stage's step is not in the image, so inline records cannot carry it.
const dockerfile = `FROM scratch AS base
ADD rootfs.tar /
ENV PATH=/bin
FROM base AS side
RUN echo side > /s
FROM base
COPY a.txt /
COPY --from=side /s /side
ARG LAST=1
RUN echo "last $LAST" > /last && cat /a.txt /side >> /last
`;
const lastRun = 'RUN echo "last $LAST" > /last && cat /a.txt /side >> /last';
const ran = (stderr: string) => steps(stderr).ran.sort();

function appContext(): string {
  const ctx = context({ Dockerfile: dockerfile, 'a.txt': 'inline\n' });
  dirs.push(ctx);
  copyFileSync(join(repo, 'fixtures', 'busybox', 'rootfs.tar'), join(ctx, 'rootfs.tar'));
  return ctx;
}

test('an image pushed with --cache-to type=inline: an empty store building with --cache-from REF runs no step', () => {
  sh('bash', [join(repo, 'fixtures', 'busybox', 'make-rootfs.sh')]);
  const ctx = appContext();
  const ref = `${reg.host}/inline/app:1`;
  const storeA = temp('store-a');
  const a = ok(
    tsbuild(['build', '--progress=plain', '-t', ref, '--push', '--cache-to', 'type=inline', ctx], { root: storeA }),
  );
  assert.is(ran(a.stderr).length, 5, a.stderr);
  // The records are in the image config as the registry serves it: the image's own 4 steps, not the side stage's.
  const config = JSON.parse(sh('skopeo', ['inspect', '--config', '--raw', '--tls-verify=false', `docker://${ref}`]));
  const records = config['tsbuild.cache.v1'] as { key: string; layer: { digest: string } | null }[];
  assert.is(records.length, 4);
  const layers = inspect(storeA, ref).Manifest.layers.map((l: { digest: string }) => l.digest);
  for (const r of records) if (r.layer) assert.ok(layers.includes(r.layer.digest), r.layer.digest);

  const storeB = temp('store-b');
  const b = ok(
    tsbuild(['build', '--progress=plain', '-t', 'again:1', '--cache-from', ref, ctx], {
      root: storeB,
    }),
  );
  // The side stage is not in the image's records: it runs; every step of the image is a hit.
  assert.equal(ran(b.stderr), ['RUN echo side > /s'], b.stderr);
  // The same files (not the same config: A's carries the records).
  assert.equal(
    inspect(storeB, 'again:1').ImageConfig.rootfs.diff_ids,
    inspect(storeA, ref).ImageConfig.rootfs.diff_ids,
  );

  // Another build arg on another empty store: only the last RUN (and the side stage) run, over layers
  // fetched from the image.
  const storeC = temp('store-c');
  const out = join(storeC, 'out');
  const c = ok(
    tsbuild(['build', '--progress=plain', '--build-arg', 'LAST=2', '--cache-from', ref, '-o', out, ctx], {
      root: storeC,
    }),
  );
  assert.equal(ran(c.stderr), [lastRun, 'RUN echo side > /s'].sort(), c.stderr);
  assert.is(readFileSync(join(out, 'last'), 'utf8'), 'last 2\ninline\nside\n');
});

test('--cache-from an image pushed without inline records: a warning, and the steps run', () => {
  const ctx = appContext();
  const ref = `${reg.host}/inline/plain:1`;
  ok(tsbuild(['build', '-q', '-t', ref, '--push', ctx], { root: temp('store-plain') }));
  const r = ok(tsbuild(['build', '--progress=plain', '--cache-from', ref, ctx], { root: temp('store-d') }));
  assert.match(r.stderr, /without inline cache records.*building without it/);
  assert.is(ran(r.stderr).length, 5, r.stderr);
});

test('bad type=inline values: exit 2 naming the flag', () => {
  const ctx = appContext();
  const cases = [
    {
      args: ['--cache-to', 'type=inline,mode=max'],
      stderr: /--cache-to type=inline,mode=max: .*only supports mode=min/,
    },
    { args: ['--cache-to', 'type=inline,ref=x'], stderr: /--cache-to type=inline,ref=x: unknown key "ref"/ },
    { args: ['--cache-from', 'type=inline'], stderr: /--cache-from type=inline: type=inline is not supported/ },
  ];
  for (const c of cases) {
    const r = tsbuild(['build', ...c.args, ctx], { root: temp('store-usage') });
    assert.is(r.code, 2, `${c.args.join(' ')}\n${r.stderr}`);
    assert.match(r.stderr, c.stderr, c.args.join(' '));
  }
});

test.run();
