// The buildx flags that meet a registry, through the CLI against a real `docker-registry`, read back
// with skopeo: --annotation on the pushed manifest, --metadata-file's digest as the registry serves it,
// and --pull re-resolving a base tag that moved.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
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

test.run();
