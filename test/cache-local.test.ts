// The build cache in a directory (--cache-to type=local,dest=DIR / --cache-from type=local,src=DIR):
// an OCI layout as buildx writes its local cache, checked with a tool that is not ours (skopeo), moved
// to another place and used by an empty store, which then runs no step. A layout from elsewhere is
// untrusted: a member that is a symlink or does not match its digest is never used.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  copyFileSync,
  cpSync,
  existsSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { cleanup, context, ok, repo, tsbuild, tempDirs } from './helpers/cli.js';
import { inspect, sh } from './helpers/image.js';
import { steps } from './helpers/progress.js';
import { have, skip } from '@tsbuild/testkit';

const { temp, dirs } = tempDirs();
test.after(() => cleanup(...dirs));

// The base comes from the context itself, so the second store is really empty: every step, the
// base's ADD included, can only come from the cache.
const dockerfile = `FROM scratch AS base
ADD rootfs.tar /
ENV PATH=/bin
FROM base AS side
RUN echo side > /s
FROM base
WORKDIR /app
COPY a.txt ./
COPY --from=side /s /side
RUN cat a.txt > /copy
ARG LAST=1
RUN echo "last $LAST" > /last && cat /copy /side >> /last
`;
const lastRun = 'RUN echo "last $LAST" > /last && cat /copy /side >> /last';
/** Sorted: stages run at once, so the order steps finish in varies. */
const allSteps = [
  'ADD rootfs.tar /',
  'COPY --from=side /s /side',
  'COPY a.txt ./',
  'RUN cat a.txt > /copy',
  'RUN echo side > /s',
  lastRun,
  'WORKDIR /app',
].sort();
const ran = (stderr: string) => steps(stderr).ran.sort();

function appContext(): string {
  const ctx = context({ Dockerfile: dockerfile, 'a.txt': 'local cache\n' });
  dirs.push(ctx);
  copyFileSync(join(repo, 'fixtures', 'busybox', 'rootfs.tar'), join(ctx, 'rootfs.tar'));
  return ctx;
}

let ctx: string;
let storeA: string;
/** The cache storeA exported (mode=max), never modified by a test: tests copy it. */
let cacheDir: string;

test.before(() => {
  ok(tsbuild(['--version']));
  sh('bash', [join(repo, 'fixtures', 'busybox', 'make-rootfs.sh')]);
  ctx = appContext();
  storeA = temp('store-a');
  cacheDir = join(temp('cache-home'), 'cache');
  const a = ok(
    tsbuild(['build', '--progress=plain', '-t', 'app:1', '--cache-to', `type=local,dest=${cacheDir},mode=max`, ctx], {
      root: storeA,
    }),
  );
  assert.equal(ran(a.stderr), allSteps, a.stderr);
  assert.match(a.stderr, /exporting cache to type=local .*mode=max/);
});

/** A copy of the exported cache, at a new place (the cache "moved"). */
function movedCache(): string {
  const d = join(temp('cache-moved'), 'c');
  cpSync(cacheDir, d, { recursive: true });
  return d;
}

test('the cache directory is an OCI layout; skopeo reads its artifact by the tag "latest"', () => {
  assert.ok(existsSync(join(cacheDir, 'oci-layout')));
  const index = JSON.parse(readFileSync(join(cacheDir, 'index.json'), 'utf8'));
  assert.is(index.manifests.length, 1);
  assert.is(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'latest');
  if (!have('skopeo')) return skip('skopeo is not installed');
  const raw = JSON.parse(sh('skopeo', ['inspect', '--raw', `oci:${cacheDir}:latest`]));
  assert.is(raw.artifactType, 'application/vnd.tsbuild.cache.v1');
  // mode=max: the layers of every step are in it, each a blob of the layout.
  assert.is(raw.layers.length, allSteps.length);
  for (const l of raw.layers) assert.ok(existsSync(join(cacheDir, 'blobs', 'sha256', l.digest.slice(7))), l.digest);
});

test('a type=local cache moved to an empty store: no step runs, and the image is the same', () => {
  const moved = join(temp('cache-moved'), 'c');
  cpSync(cacheDir, `${moved}.tmp`, { recursive: true });
  renameSync(`${moved}.tmp`, moved);
  const storeB = temp('store-b');
  const b = ok(
    tsbuild(['build', '--progress=plain', '-t', 'app:1', '--cache-from', `type=local,src=${moved}`, ctx], {
      root: storeB,
    }),
  );
  const s = steps(b.stderr);
  assert.equal(s.ran, [], b.stderr);
  assert.is(s.cached.length, allSteps.length, b.stderr);
  // The same image (config): its layers came from the cache compressed, where storeA keeps plain tars.
  assert.is(inspect(storeB, 'app:1').Id, inspect(storeA, 'app:1').Id);

  // A changed build arg: only the last RUN runs, over layers copied from the layout.
  const storeC = temp('store-c');
  const out = join(storeC, 'out');
  const c = ok(
    tsbuild(
      ['build', '--progress=plain', '--build-arg', 'LAST=2', '--cache-from', `type=local,src=${moved}`, '-o', out, ctx],
      { root: storeC },
    ),
  );
  assert.equal(ran(c.stderr), [lastRun], c.stderr);
  assert.is(readFileSync(join(out, 'last'), 'utf8'), 'last 2\nlocal cache\nside\n');
});

test('cache mounts travel in a type=local cache: mounts=ID, then --cache-from into an empty store', () => {
  // The step "downloads" into its cache mount only when the mount is empty; what it copies out says
  // which build filled the mount. The base is in the context: store B has nothing but the layout.
  const app = context({
    Dockerfile: [
      'FROM scratch',
      'ADD rootfs.tar /',
      'ENV PATH=/bin',
      'ARG BUST=1',
      'RUN --mount=type=cache,id=dl,target=/cache test -s /cache/pkg || echo "fetched by build $BUST" > /cache/pkg; \\',
      '    cp /cache/pkg /pkg && echo "$BUST" > /bust',
      '',
    ].join('\n'),
  });
  dirs.push(app);
  copyFileSync(join(repo, 'fixtures', 'busybox', 'rootfs.tar'), join(app, 'rootfs.tar'));
  const dir = join(temp('mounts-cache'), 'c');
  const a = ok(
    tsbuild(['build', '--progress=plain', '--cache-to', `type=local,dest=${dir},mounts=dl`, app], {
      root: temp('store-mounts-a'),
    }),
  );
  assert.match(a.stderr, /1 cache mounts/);
  const moved = join(temp('mounts-moved'), 'c');
  cpSync(dir, moved, { recursive: true });
  rmSync(dir, { recursive: true });
  // Another build arg: the RUN step runs in store B, over the mount restored from the layout.
  const storeB = temp('store-mounts-b');
  const out = join(storeB, 'out');
  const b = ok(
    tsbuild(
      ['build', '--progress=plain', '--build-arg', 'BUST=2', '--cache-from', `type=local,src=${moved}`, '-o', out, app],
      { root: storeB },
    ),
  );
  assert.equal(steps(b.stderr).ran, [steps(a.stderr).ran.find((r) => r.startsWith('RUN'))!], b.stderr);
  assert.match(b.stderr, /restored cache mount dl from /);
  assert.is(readFileSync(join(out, 'pkg'), 'utf8'), 'fetched by build 1\n', 'the mount came from the layout');
  assert.is(readFileSync(join(out, 'bust'), 'utf8'), '2\n');
  assert.not.ok(existsSync(join(out, 'cache', 'pkg')), "the mount's content stays out of the image");
  // Without the layout, the same build in an empty store starts with an empty mount.
  const storeC = temp('store-mounts-c');
  const cold = join(storeC, 'out');
  ok(tsbuild(['build', '-q', '--build-arg', 'BUST=2', '-o', cold, app], { root: storeC }));
  assert.is(readFileSync(join(cold, 'pkg'), 'utf8'), 'fetched by build 2\n');
});

test('mode=min (the default) keeps only the steps of the final stage and the stages it is FROM', () => {
  const d = join(temp('cache-min'), 'c');
  ok(tsbuild(['build', '--cache-to', `type=local,dest=${d}`, ctx], { root: storeA }));
  const index = JSON.parse(readFileSync(join(d, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(join(d, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  // All but the side stage's RUN, whose layer is not in the image.
  assert.is(manifest.layers.length, allSteps.length - 1);
  // A second export to the same directory under another tag keeps the first entry.
  ok(tsbuild(['build', '--cache-to', `type=local,dest=${d},tag=other`, ctx], { root: storeA }));
  const names = JSON.parse(readFileSync(join(d, 'index.json'), 'utf8')).manifests.map(
    (m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name'],
  );
  assert.equal(names.sort(), ['latest', 'other']);
});

/** Path of the layout blob holding the layer of the last RUN step's record. */
function layerOfLastRun(dir: string): string {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(join(dir, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  // The cache holds layers as exported (compressed): find the last one by its diffID, through the records.
  const diffID = inspect(storeA, 'app:1').ImageConfig.rootfs.diff_ids.at(-1) as string;
  const records = JSON.parse(readFileSync(join(dir, 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8'));
  const last = records.records.find((r: { layer: { diffID: string } | null }) => r.layer?.diffID === diffID)?.layer
    .digest as string;
  assert.ok(
    manifest.layers.some((l: { digest: string }) => l.digest === last),
    'the cache holds the last layer',
  );
  return join(dir, 'blobs', 'sha256', last.slice(7));
}

test('a hostile cache layout: symlinked or corrupt members are never used; the steps run instead', () => {
  const secret = join(temp('host'), 'secret');
  writeFileSync(secret, 'host secret\n');
  const cases: { name: string; spoil: (dir: string) => void; warn: RegExp; ran: string[] }[] = [
    {
      name: 'index.json is a symlink (to a copy of the real one, elsewhere)',
      spoil: (dir) => {
        const real = join(temp('elsewhere'), 'index.json');
        renameSync(join(dir, 'index.json'), real);
        symlinkSync(real, join(dir, 'index.json'));
      },
      warn: /not a regular file \(a symlink\); building without it/,
      ran: allSteps,
    },
    {
      name: 'a layer blob is a symlink to the same bytes elsewhere',
      spoil: (dir) => {
        const blob = layerOfLastRun(dir);
        const real = join(temp('elsewhere'), 'blob');
        renameSync(blob, real);
        symlinkSync(real, blob);
      },
      warn: /fetching cached layer sha256:[0-9a-f]{64} from type=local .*a symlink/,
      ran: [lastRun],
    },
    {
      name: 'a layer blob whose bytes do not match its digest',
      spoil: (dir) => {
        const blob = layerOfLastRun(dir);
        const bytes = readFileSync(blob);
        bytes[bytes.length - 1] ^= 0xff;
        rmSync(blob);
        writeFileSync(blob, bytes);
      },
      warn: /fetching cached layer sha256:[0-9a-f]{64} from type=local .*corrupt/,
      ran: [lastRun],
    },
    {
      name: 'the records blob is a symlink to a host file',
      spoil: (dir) => {
        const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
        const mpath = join(dir, 'blobs', 'sha256', index.manifests[0].digest.slice(7));
        const config = JSON.parse(readFileSync(mpath, 'utf8')).config.digest as string;
        const cpath = join(dir, 'blobs', 'sha256', config.slice(7));
        rmSync(cpath);
        symlinkSync(secret, cpath);
      },
      warn: /a symlink\); building without it/,
      ran: allSteps,
    },
  ];
  for (const c of cases) {
    const dir = movedCache();
    c.spoil(dir);
    const root = temp('store-hostile');
    const r = tsbuild(['build', '--progress=plain', '--cache-from', `type=local,src=${dir}`, ctx], { root });
    assert.is(r.code, 0, `${c.name}\n${r.stderr}`);
    assert.match(r.stderr, c.warn, c.name);
    assert.equal(ran(r.stderr), c.ran, `${c.name}\n${r.stderr}`);
    assert.not.match(r.stderr, /host secret/, c.name);
    // Nothing that failed verification reached the store.
    const blobs = readdirSync(join(root, 'blobs', 'sha256'));
    assert.not.ok(
      blobs.some((b) => b.includes('tmp')),
      c.name,
    );
  }
});

test('bad --cache-to/--cache-from values for type=local: exit 2 naming the flag; a missing dir is a warning', () => {
  const root = temp('store-usage');
  const cases = [
    { args: ['--cache-to', 'type=local'], stderr: /--cache-to type=local: dest= is required for type=local/ },
    { args: ['--cache-from', 'type=local,dest=/x'], stderr: /--cache-from type=local,dest=\/x: unknown key "dest"/ },
    { args: ['--cache-to', 'type=local,dest=/x,ref=y'], stderr: /unknown key "ref"/ },
    { args: ['--cache-to', 'type=local,dest=/x,mode=all'], stderr: /mode=all is not one of min, max/ },
    { args: ['--cache-to', 'type=gha'], stderr: /--cache-to type=gha: type=gha is not supported/ },
  ];
  for (const c of cases) {
    const r = tsbuild(['build', ...c.args, ctx], { root });
    assert.is(r.code, 2, `${c.args.join(' ')}\n${r.stderr}`);
    assert.match(r.stderr, c.stderr, c.args.join(' '));
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  }
  const missing = join(temp('nothing'), 'no-such-cache');
  const r = ok(tsbuild(['build', '--progress=plain', '--cache-from', `type=local,src=${missing}`, ctx], { root }));
  assert.match(
    r.stderr,
    /--cache-from type=local .*no-such-cache: no cache tagged "latest" there; building without it/,
  );
});

test.run();
