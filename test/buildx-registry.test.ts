// The buildx flags that meet a registry, through the CLI against a real `docker-registry`, read back
// with skopeo: --annotation on the pushed manifest, --metadata-file's digest as the registry serves it,
// --pull re-resolving a base tag that moved, and force-compression / compression-level on a push.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '@tsbuild/testkit';
import { Base, cleanup, context, ok, storeWithBase, tsbuild, tempDirs } from './helpers/cli.js';
import { inspect, sh } from './helpers/image.js';
import { steps } from './helpers/progress.js';

let reg: TestRegistry;
const { temp, dirs } = tempDirs();
let root: string;

test.before(async () => {
  reg = await startRegistry();
  root = storeWithBase(temp('store'));
});
test.after(async () => {
  await reg?.stop();
  cleanup(...dirs);
});

/** The manifest bytes the registry serves for ref (skopeo, not our client). */
const rawManifest = (ref: string) => sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
const sha256 = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

test('--annotation K=V and manifest:K=V: on the pushed manifest, as skopeo reads it', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nCOPY a /a\n`, a: 'annotated' });
  dirs.push(ctx);
  const ref = `${reg.host}/annotated:1`;
  ok(
    tsbuild(
      [
        'build',
        '-q',
        '--push',
        '-t',
        ref,
        '--annotation',
        'org.opencontainers.image.title=hello',
        '--annotation',
        'manifest:org.opencontainers.image.source=https://example.com/src',
        '--annotation',
        'manifest[linux/amd64]:com.example.platform=amd64',
        '--annotation',
        'manifest[linux/arm64]:com.example.other=arm64',
        ctx,
      ],
      { root },
    ),
  );
  const manifest = JSON.parse(rawManifest(ref));
  assert.equal(manifest.annotations, {
    'org.opencontainers.image.title': 'hello',
    'org.opencontainers.image.source': 'https://example.com/src',
    'com.example.platform': 'amd64',
  });
  for (const bad of ['index:a=b', 'manifest-descriptor:a=b', 'index-descriptor:a=b', 'frob:a=b', 'novalue']) {
    const r = tsbuild(['build', '--annotation', bad, ctx], { root });
    assert.is(r.code, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /^ERROR: --annotation /m);
  }
});

test('--metadata-file with --push: containerimage.digest is the digest of what the registry serves', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nCOPY a /a\n`, a: 'pushed with metadata' });
  dirs.push(ctx);
  const ref = `${reg.host}/meta:1`;
  const file = join(temp('meta'), 'metadata.json');
  ok(tsbuild(['build', '-q', '--push', '-t', ref, '--metadata-file', file, ctx], { root }));
  const meta = JSON.parse(readFileSync(file, 'utf8'));
  const served = rawManifest(ref);
  assert.is(meta['containerimage.digest'], sha256(served));
  assert.equal(meta['containerimage.descriptor'], {
    mediaType: JSON.parse(served).mediaType,
    digest: sha256(served),
    size: Buffer.byteLength(served),
  });
  assert.is(meta['containerimage.config.digest'], JSON.parse(served).config.digest);
  assert.is(meta['image.name'], ref);
});

// -o type=registry / type=image,push=true: the image pushed under the exporter's names (or -t's), as
// skopeo sees the registry; a name only given to the store is not pushed.
const served = (ref: string) =>
  spawnSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]).status === 0;
/** stored: the names in the store and --metadata-file's image.name (default: pushed). */
const imagePushes: { name: string; args: (r: string) => string[]; pushed: string[]; stored?: string[] }[] = [
  { name: 'type=registry,name=N', args: (r) => ['-o', `type=registry,name=${r}/oreg:1`], pushed: ['oreg:1'] },
  {
    name: 'type=image with two quoted names, push=true',
    args: (r) => ['-o', `type=image,"name=${r}/oimg:1,${r}/oimg:2",push=true`],
    pushed: ['oimg:1', 'oimg:2'],
  },
  {
    name: '--push with type=image,name=N (no -t)',
    args: (r) => ['--push', '-o', `type=image,name=${r}/opush:1`],
    pushed: ['opush:1'],
  },
  {
    name: '-t replaces name= (buildx), push=1',
    args: (r) => ['-t', `${r}/otag:1`, '-o', `type=image,name=${r}/oname:1,push=1`],
    pushed: ['otag:1'],
  },
  {
    name: 'type=image,name=N,push=false: not pushed',
    args: (r) => ['-o', `type=image,name=${r}/onot:1,push=false`],
    pushed: [],
    stored: ['onot:1'],
  },
  {
    name: 'registry.insecure=true, compression=uncompressed',
    args: (r) => ['-o', `type=registry,name=${r}/oplain:1,registry.insecure=true,compression=uncompressed`],
    pushed: ['oplain:1'],
  },
];
for (const c of imagePushes)
  test(`-o ${c.name}: pushed where skopeo finds it, and named in the store`, () => {
    const ctx = context({ Dockerfile: `FROM ${Base}\nCOPY a /a\n`, a: c.name });
    dirs.push(ctx);
    const file = join(temp('meta'), 'metadata.json');
    ok(tsbuild(['build', '-q', ...c.args(reg.host), '--metadata-file', file, ctx], { root }));
    for (const n of c.pushed) {
      const manifest = JSON.parse(rawManifest(`${reg.host}/${n}`));
      assert.ok(manifest.layers.length > 0, n);
      if (c.name.includes('uncompressed'))
        assert.ok(manifest.layers.every((l: { mediaType: string }) => !/gzip|zstd/.test(l.mediaType)));
    }
    const stored = c.stored ?? c.pushed;
    for (const n of stored) ok(tsbuild(['inspect', `${reg.host}/${n}`], { root }));
    // What is only in the store, or not named at all, is not in the registry.
    for (const n of [...stored, 'oname:1'].filter((n) => !c.pushed.includes(n)))
      assert.not.ok(served(`${reg.host}/${n}`), `${n} is not pushed`);
    assert.is(tsbuild(['inspect', `${reg.host}/oname:1`], { root }).code, 1, 'a name -t replaced is not stored');
    const meta = JSON.parse(readFileSync(file, 'utf8'));
    assert.is(meta['image.name'], stored.map((n) => `${reg.host}/${n}`).join(','));
  });

test('-o type=registry with several platforms: one index pushed, named in the store', () => {
  const ctx = context({ Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'multi' });
  dirs.push(ctx);
  const ref = `${reg.host}/omulti:1`;
  ok(
    tsbuild(['build', '-q', '--platform', 'linux/amd64,linux/arm64', '-o', `type=registry,name=${ref}`, ctx], { root }),
  );
  const index = JSON.parse(rawManifest(ref));
  assert.equal(
    index.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture),
    ['amd64', 'arm64'],
  );
  // The store's index names plain layers; the registry's, the compressed ones: named in both, not the same digest.
  ok(tsbuild(['inspect', ref], { root }));
});

test('--pull: a base tag moved in the registry is used, --explain says so, and only the steps above it miss', () => {
  const baseRef = `${reg.host}/pullbase:1`;
  ok(tsbuild(['tag', Base, baseRef], { root }));
  ok(tsbuild(['push', '-q', baseRef], { root }));
  // What the registry serves (the push compresses; the store keeps its layers uncompressed).
  const old = sha256(rawManifest(baseRef));
  // Another store builds FROM the tag: pulled once, then used from that store.
  const other = temp('store-other');
  const ctx = context({ Dockerfile: `FROM ${baseRef}\nRUN echo built > /built\n` });
  dirs.push(ctx);
  const build = (args: string[]) =>
    ok(tsbuild(['build', '--progress=plain', '--explain', ...args, ctx], { root: other }));
  build([]);
  assert.equal(steps(build([]).stderr).cached, ['RUN echo built > /built']);
  // The tag moves.
  const next = context({ Dockerfile: `FROM ${Base}\nRUN echo moved > /moved\n` });
  dirs.push(next);
  ok(tsbuild(['build', '-q', '--push', '-t', baseRef, next], { root }));
  const moved = sha256(rawManifest(baseRef));
  assert.is.not(moved, old);
  // Without --pull the store's copy is used, as before.
  const stale = build([]);
  assert.equal(steps(stale.stderr).cached, ['RUN echo built > /built']);
  assert.not.match(stale.stderr, 'base image moved');
  // With --pull: the new digest, said, and the RUN above it runs again.
  const pulled = build(['--pull']);
  assert.match(pulled.stderr, `base image moved: ${old} → ${moved}`);
  assert.equal(steps(pulled.stderr).ran, ['RUN echo built > /built']);
  assert.is(inspect(other, baseRef).ManifestDigest, moved);
  // Pulled again, nothing moved: a hit, and no such line.
  const again = build(['--pull']);
  assert.not.match(again.stderr, 'base image moved');
  assert.equal(steps(again.stderr).cached, ['RUN echo built > /built']);
  // --pull of a tag the registry does not have fails, naming it, even when the store has it.
  const localOnly = `${reg.host}/local-only:1`;
  ok(tsbuild(['tag', Base, localOnly], { root }));
  const local = context({ Dockerfile: `FROM ${localOnly}\n` });
  dirs.push(local);
  const r = tsbuild(['build', '--pull', local], { root });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, `base image "${localOnly}" could not be pulled (--pull)`);
});

// force-compression= and compression-level= (BuildKit's): a base pulled with gzip layers, built on, pushed.
// Without force only the new layer is compressed as asked; with it every layer, the base's recompressed.
/** Each layer's compression as the registry serves the manifest: tar, gzip or zstd. */
const layerKinds = (ref: string): string[] =>
  JSON.parse(rawManifest(ref)).layers.map(
    (l: { mediaType: string }) => /\+(gzip|zstd)$/.exec(l.mediaType)?.[1] ?? 'tar',
  );
const layerDigests = (ref: string): string[] =>
  JSON.parse(rawManifest(ref)).layers.map((l: { digest: string }) => l.digest);

/** skopeo copies ref to an OCI layout (checking every blob's digest); each layer then unpacks to its diffID. */
function verifyCopy(ref: string): void {
  const out = join(temp('copy'), 'layout');
  sh('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${out}:x`]);
  const blob = (d: string) => join(out, 'blobs', 'sha256', d.slice('sha256:'.length));
  const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8'));
  const diffIDs = manifest.layers.map((l: { mediaType: string; digest: string }) => {
    const tool = l.mediaType.endsWith('zstd') ? 'zstd -dc' : l.mediaType.endsWith('gzip') ? 'gzip -dc' : 'cat';
    return `sha256:${sh('sh', ['-c', `${tool} < "$1" | sha256sum`, 'sh', blob(l.digest)]).split(' ')[0]}`;
  });
  assert.equal(diffIDs, config.rootfs.diff_ids, `${ref}: every layer decompresses to its diffID`);
  assert.ok(readdirSync(join(out, 'blobs', 'sha256')).length >= diffIDs.length + 2);
}

let gz: string;
let gzCtx: string;
/** A build in store `gz` of gzCtx (FROM the gzip base) pushed as `ref`, its output's keys `spec`. */
const pushGz = (ref: string, spec: string) =>
  tsbuild(['build', '-q', '-o', `type=registry,name=${ref},${spec}`, gzCtx], { root: gz });

test('force-compression: a pulled gzip base layer is recompressed only when forced; each layer as asked', () => {
  const baseRef = `${reg.host}/gzbase:1`;
  ok(tsbuild(['tag', Base, baseRef], { root }));
  ok(tsbuild(['push', '-q', '--compression', 'gzip', baseRef], { root }));
  gz = temp('store-gz');
  gzCtx = context({ Dockerfile: `FROM ${baseRef}\nCOPY a /a\n`, a: 'on a gzip base' });
  dirs.push(gzCtx);
  const rows: { name: string; spec: string; kinds: string[] }[] = [
    { name: 'zstd, not forced: the base layer stays gzip', spec: 'compression=zstd', kinds: ['gzip', 'zstd'] },
    { name: 'zstd, forced', spec: 'compression=zstd,force-compression=true', kinds: ['zstd', 'zstd'] },
    {
      name: 'force-compression= (empty) is true',
      spec: 'compression=zstd,force-compression=',
      kinds: ['zstd', 'zstd'],
    },
    {
      name: 'gzip, forced: gzip layers stay',
      spec: 'compression=gzip,force-compression=true',
      kinds: ['gzip', 'gzip'],
    },
    {
      name: 'uncompressed, forced: decompressed',
      spec: 'compression=uncompressed,force-compression=1',
      kinds: ['tar', 'tar'],
    },
    { name: 'force-compression=false', spec: 'compression=zstd,force-compression=false', kinds: ['gzip', 'zstd'] },
  ];
  const base = layerDigests(baseRef);
  assert.is(base.length, 1);
  for (const [i, r] of rows.entries()) {
    const ref = `${reg.host}/forced:${i}`;
    ok(pushGz(ref, r.spec), r.name);
    assert.equal(layerKinds(ref), r.kinds, r.name);
    // A layer left as it was is the pulled blob itself.
    if (r.kinds[0] === 'gzip') assert.is(layerDigests(ref)[0], base[0], r.name);
    verifyCopy(ref);
  }
});

test('tsbuild push --compression zstd --force-compression: every layer zstd', () => {
  const tag = `${reg.host}/pushforced:1`;
  ok(tsbuild(['build', '-q', '-t', tag, gzCtx], { root: gz }));
  ok(tsbuild(['push', '-q', '--compression', 'zstd', '--force-compression', tag], { root: gz }));
  assert.equal(layerKinds(tag), ['zstd', 'zstd']);
  verifyCopy(tag);
});

test('compression-level: another level is another blob, never the one remembered for the first', () => {
  const digests = (tag: string, spec: string) => {
    ok(pushGz(`${reg.host}/level:${tag}`, spec), spec);
    verifyCopy(`${reg.host}/level:${tag}`);
    return layerDigests(`${reg.host}/level:${tag}`);
  };
  const z3 = digests('z3', 'compression=zstd,force-compression=true');
  const z19 = digests('z19', 'compression=zstd,force-compression=true,compression-level=19');
  const z22 = digests('z22', 'compression=zstd,force-compression=true,compression-level=22');
  // zstd's level 0 is its default (3), and 3 said is the default: the same blobs as no level.
  assert.equal(digests('z0', 'compression=zstd,force-compression=true,compression-level=0'), z3);
  assert.equal(digests('z3again', 'compression=zstd,force-compression=true,compression-level=3'), z3);
  assert.is.not(z19[0], z3[0]);
  assert.is.not(z22[0], z19[0]);
  // gzip: the new layer at level 9 and at the default (1); the flags give the level when the output does not.
  const g9 = digests('g9', 'compression=gzip,compression-level=9');
  const g1 = digests('g1', 'compression=gzip');
  assert.is.not(g9[1], g1[1]);
  assert.equal(layerDigests(`${reg.host}/level:g1`), g1);
  const g9flag = `${reg.host}/level:g9flag`;
  ok(tsbuild(['build', '-q', '--compression-level', '9', '-o', `type=registry,name=${g9flag}`, gzCtx], { root: gz }));
  assert.equal(layerDigests(g9flag), g9);
});

// Bad values: exit 2, the key (or flag) named, before anything is built.
const badCompression: { args: string[]; err: RegExp }[] = [
  {
    args: ['-o', 'type=registry,name=r/x,force-compression=maybe'],
    err: /force-compression: "maybe" is not a boolean/,
  },
  { args: ['-o', 'type=registry,name=r/x,compression-level=fast'], err: /compression-level: "fast" is not an integer/ },
  { args: ['-o', 'type=registry,name=r/x,compression-level=1.5'], err: /compression-level: "1.5" is not an integer/ },
  {
    args: ['-o', 'type=registry,name=r/x,compression-level=10'],
    err: /compression-level: 10 is out of range for gzip \(0-9\)/,
  },
  {
    args: ['-o', 'type=registry,name=r/x,compression-level=-1'],
    err: /compression-level: -1 is out of range for gzip/,
  },
  {
    args: ['-o', 'type=registry,name=r/x,compression=zstd,compression-level=23'],
    err: /compression-level: 23 is out of range for zstd \(0-22\)/,
  },
  {
    args: ['-o', 'type=image,name=r/x,compression=lz4'],
    err: /compression: "lz4" is not one of gzip, zstd, uncompressed/,
  },
  { args: ['--compression-level', 'x', '--push', '-t', 'r/x'], err: /--compression-level: "x" is not an integer/ },
  {
    args: ['--compression', 'zstd', '--compression-level', '30', '--push', '-t', 'r/x'],
    err: /--compression-level: 30 is out/,
  },
  // The flag's level is checked against the output's own compression.
  {
    args: ['--compression', 'zstd', '--compression-level', '15', '-o', 'type=registry,name=r/x,compression=gzip'],
    err: /--compression-level: 15 is out of range for gzip/,
  },
];
for (const c of badCompression)
  test(`bad: ${c.args.join(' ')}`, () => {
    const r = tsbuild(['build', ...c.args, gzCtx ?? '.'], { root });
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, c.err);
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  });

test('bad: tsbuild push --compression-level', () => {
  for (const [args, err] of [
    [['--compression-level', 'x'], /--compression-level: "x" is not an integer/],
    [['--compression', 'zstd', '--compression-level', '23'], /--compression-level: 23 is out of range for zstd/],
  ] as const) {
    const r = tsbuild(['push', ...args, Base], { root });
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, err);
  }
});

test.run();
