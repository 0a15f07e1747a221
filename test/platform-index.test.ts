// Multi-platform images (`build --platform a,b`, and bases pulled for several platforms) against real
// consumers: a `docker-registry` read back with skopeo, and tsbuild stores pulling and running each
// platform (arm64 under QEMU user emulation, registered by scripts/setup.sh --test).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { skip, startRegistry, type TestRegistry } from '@tsbuild/testkit';
import { cleanup, context, ok, repo, tsbuild, tempDirs } from './helpers/cli.js';
import { sh } from './helpers/image.js';
import { noArm64Emulation } from './helpers/emulation.js';

let reg: TestRegistry | undefined;
const { temp, dirs } = tempDirs();
test.after(async () => {
  await reg?.stop();
  cleanup(...dirs);
});

/** The registry, started once; undefined (with the reason) when arm64 cannot be emulated here. */
async function registry(): Promise<TestRegistry> {
  reg ??= await startRegistry();
  return reg;
}

/** A context building busybox for $TARGETARCH (amd64 and arm64 root filesystems), then `extra` steps. */
function busyboxContext(extra = ''): string {
  sh('bash', [join(repo, 'fixtures', 'busybox', 'make-rootfs.sh')]);
  sh('bash', [join(repo, 'fixtures', 'busybox-arm64', 'make-rootfs.sh')]);
  const ctx = context({ Dockerfile: `FROM scratch\nARG TARGETARCH\nADD rootfs-$TARGETARCH.tar /\n${extra}` });
  dirs.push(ctx);
  copyFileSync(join(repo, 'fixtures', 'busybox', 'rootfs.tar'), join(ctx, 'rootfs-amd64.tar'));
  copyFileSync(join(repo, 'fixtures', 'busybox-arm64', 'rootfs.tar'), join(ctx, 'rootfs-arm64.tar'));
  return ctx;
}

/** The bytes the registry serves for ref (skopeo, not our client), parsed. */
const raw = (ref: string): any =>
  JSON.parse(sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]));
const sha256 = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const repoOf = (ref: string) => ref.replace(/:[^:/]+$/, '');
const Both = 'linux/amd64,linux/arm64';
const uname: Record<string, string> = { amd64: 'x86_64', arm64: 'aarch64' };

test('--platform a,b --push: each platform goes up with its layers compressed (gzip, --compression zstd)', async () => {
  const why = noArm64Emulation();
  if (why) return skip(why);
  const r = await registry();
  const ctx = busyboxContext('RUN uname -m > /arch\n');
  const root = temp('store-push');
  for (const [compression, layerType] of [
    ['', 'application/vnd.oci.image.layer.v1.tar+gzip'],
    ['zstd', 'application/vnd.oci.image.layer.v1.tar+zstd'],
  ]) {
    const ref = `${r.host}/multi/compressed-${compression || 'default'}:1`;
    const flags = compression ? ['--compression', compression] : [];
    ok(tsbuild(['build', '-q', '--platform', Both, ...flags, '-t', ref, '--push', ctx], { root }));
    const index = raw(ref);
    assert.is(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    const archs = index.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture);
    assert.equal(archs, ['amd64', 'arm64']);
    for (const entry of index.manifests) {
      const arch = entry.platform.architecture as string;
      const manifest = raw(`${repoOf(ref)}@${entry.digest}`);
      assert.is(manifest.layers.length, 2, arch);
      for (const l of manifest.layers) assert.is(l.mediaType, layerType, `${arch} ${compression}`);
      // Each platform pulls into an empty store and runs (arm64 emulated): its RUN ran for it.
      const other = temp('store-pull');
      ok(tsbuild(['pull', `${repoOf(ref)}@${entry.digest}`], { root: other }));
      const run = ok(
        tsbuild(['run', '--rm', `${repoOf(ref)}@${entry.digest}`, 'sh', '-c', 'uname -m; cat /arch'], { root: other }),
      );
      assert.is(run.stdout, `${uname[arch]}\n${uname[arch]}\n`, arch);
    }
  }
});

/** A busybox index for amd64 and arm64 in the registry (a base image for both), its reference. */
let baseRef: string | undefined;
async function busyboxIndex(): Promise<string> {
  if (baseRef) return baseRef;
  const ref = `${(await registry()).host}/base/busybox:1`;
  ok(tsbuild(['build', '-q', '--platform', Both, '-t', ref, '--push', busyboxContext()], { root: temp('store-base') }));
  return (baseRef = ref);
}

test('a base pulled for arm64, then amd64, under one tag: both kept, each build uses its own, no re-pull', async () => {
  const why = noArm64Emulation();
  if (why) return skip(why);
  const base = await busyboxIndex();
  const ctx = context({ Dockerfile: `FROM ${base}\nRUN uname -m > /arch\n` });
  dirs.push(ctx);
  const root = temp('store-bases');
  const build = (arch: string) =>
    ok(tsbuild(['build', '--progress=plain', '--platform', `linux/${arch}`, '-t', `app:${arch}`, ctx], { root }));
  for (const [arch, pulls] of [
    ['arm64', true],
    ['amd64', true],
    ['arm64', false],
    ['amd64', false],
  ] as const) {
    const r = build(arch);
    assert.is(/pull base image/.test(r.stderr), pulls, `${arch}: pulled? ${r.stderr}`);
    const config = JSON.parse(ok(tsbuild(['inspect', `app:${arch}`], { root })).stdout).ImageConfig;
    assert.is(config.architecture, arch);
    const run = ok(tsbuild(['run', '--rm', `app:${arch}`, 'sh', '-c', 'uname -m; cat /arch'], { root }));
    assert.is(run.stdout, `${uname[arch]}\n${uname[arch]}\n`, arch);
  }
  // The tag names the registry's index, as containerd keeps it; both platforms' images are whole.
  const index = raw(base);
  const tagged = JSON.parse(ok(tsbuild(['inspect', '--format', '{{json .}}', base], { root })).stdout);
  assert.ok(tagged, 'inspect of the base tag');
  ok(tsbuild(['check'], { root }));
  assert.is(index.manifests.length, 2);
});

test('a build pulling a base for its platform never moves a tag that names a local image (a local build)', async () => {
  // The store's NAME:1 is a local amd64 build that was never pushed; the registry's NAME:1 is another
  // image (an index). A build for arm64 pulls the registry's arm64 image and uses it, but the tag keeps
  // naming the local build: moving it would drop that image (prune then deletes it), silently.
  const base = await busyboxIndex();
  const root = temp('store-keep');
  const local = context({ Dockerfile: 'FROM scratch\nCOPY local /local\n', local: 'only here\n' });
  dirs.push(local);
  const localId = ok(tsbuild(['build', '-q', '--platform', 'linux/amd64', '-t', base, local], { root })).stdout.trim();
  const inspect = (ref: string) => JSON.parse(ok(tsbuild(['inspect', ref], { root })).stdout);
  for (const [i, df] of [`FROM --platform=linux/arm64 ${base}\n`, `FROM ${base}\n`].entries()) {
    const ctx = context({ Dockerfile: df });
    dirs.push(ctx);
    ok(tsbuild(['build', '-q', '--platform', 'linux/arm64', '-t', `arm:${i}`, ctx], { root }));
    assert.is(inspect(`arm:${i}`).Architecture, 'arm64', df);
    assert.is(inspect(base).Id, localId, `${df}: the tag still names the local build`);
  }
  ok(tsbuild(['prune', '--grace', '0s'], { root }));
  assert.is(inspect(base).Id, localId);
  ok(tsbuild(['check'], { root }));
});

test('images and inspect of an index (built, or pulled): one row per tag, the native image', async () => {
  const why = noArm64Emulation();
  if (why) return skip(why);
  const root = temp('store-views');
  const indexDigest = ok(
    tsbuild(['build', '-q', '--platform', Both, '-t', 'multi:1', busyboxContext()], { root }),
  ).stdout.trim();
  // A pulled index, one platform at a time: the one that is there is shown, then the native one.
  const base = await busyboxIndex();
  const served = sha256(sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${base}`]));
  const baseRepo = repoOf(base);
  const inspect = (ref: string) => JSON.parse(ok(tsbuild(['inspect', ref], { root })).stdout);
  const pulled = ok(tsbuild(['pull', '--platform', 'linux/arm64', base], { root }));
  assert.match(pulled.stdout, `Digest: ${served}`);
  assert.is(inspect(base).Architecture, 'arm64');
  // Pushing an index with a platform missing would lose it: refused, saying which.
  const partial = `${repoOf(base)}-copy:partial`;
  ok(tsbuild(['tag', base, partial], { root }));
  const refused = tsbuild(['push', partial], { root });
  assert.is(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /is an index whose image for linux\/amd64 is not in the store/);
  ok(tsbuild(['rmi', partial], { root }));
  ok(tsbuild(['pull', base], { root }));
  for (const [ref, repo, digest] of [
    ['multi:1', 'multi', indexDigest],
    [base, baseRepo, served],
  ]) {
    const doc = inspect(ref);
    assert.is(doc.Architecture, 'amd64', ref);
    assert.is(doc.Id, doc.Manifest.config.digest, ref);
    assert.equal(doc.RepoDigests, [`${repo}@${digest}`], ref);
    const rows = JSON.parse(ok(tsbuild(['images', '--format', 'json'], { root })).stdout).filter(
      (r: { repository: string }) => r.repository === repo,
    );
    assert.is(rows.length, 1, `${ref}: one row per tag`);
    assert.is(rows[0].id, doc.Id, ref);
    assert.is(rows[0].indexDigest, digest, ref);
    assert.is(rows[0].manifestDigest, doc.ManifestDigest, ref);
    const table = ok(
      tsbuild(['images', '--filter', `reference=${repo}`, '--format', '{{.Tag}} {{.ID}} {{.Digest}}'], { root }),
    );
    assert.is(table.stdout, `${ref.split(':').at(-1)} ${doc.Id.slice(7, 19)} ${digest}\n`, ref);
  }
  // `tag` copies the index (as docker): the new name pushes both platforms.
  const copy = `${repoOf(base)}-copy:1`;
  ok(tsbuild(['tag', 'multi:1', copy], { root }));
  assert.equal(inspect(copy).RepoDigests.sort(), [`${repoOf(copy)}@${indexDigest}`, `multi@${indexDigest}`].sort());
  ok(tsbuild(['push', copy], { root }));
  const pushed = raw(copy).manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture);
  assert.equal(pushed, ['amd64', 'arm64']);
  // The arm64 image pulled first is still there, under the same tag: a build for arm64 pulls nothing.
  const ctx = context({ Dockerfile: `FROM ${base}\n` });
  dirs.push(ctx);
  const arm = ok(tsbuild(['build', '--progress=plain', '--platform', 'linux/arm64', '-t', 'arm:1', ctx], { root }));
  assert.not.match(arm.stderr, 'pull base image');
  assert.is(inspect('arm:1').Architecture, 'arm64');
  ok(tsbuild(['check'], { root }));
});

test('--annotation index: and manifest-descriptor: with several platforms, as skopeo reads the index', async () => {
  const why = noArm64Emulation();
  if (why) return skip(why);
  const ref = `${(await registry()).host}/multi/annotated:1`;
  const ctx = busyboxContext();
  const root = temp('store-annotations');
  const annotations = [
    'index:org.opencontainers.image.description=both platforms',
    'manifest,index:org.opencontainers.image.source=https://example.com/src',
    'manifest-descriptor:com.example.entry=yes',
    'manifest-descriptor[linux/arm64]:com.example.arm=only',
    'manifest[linux/arm64]:com.example.arch=arm64',
  ].flatMap((a) => ['--annotation', a]);
  ok(tsbuild(['build', '-q', '--platform', Both, ...annotations, '-t', ref, '--push', ctx], { root }));
  const index = raw(ref);
  assert.equal(index.annotations, {
    'org.opencontainers.image.description': 'both platforms',
    'org.opencontainers.image.source': 'https://example.com/src',
  });
  const entries = index.manifests as { digest: string; platform: { architecture: string }; annotations: object }[];
  assert.equal(
    entries.map((m) => [m.platform.architecture, m.annotations]),
    [
      ['amd64', { 'com.example.entry': 'yes' }],
      ['arm64', { 'com.example.entry': 'yes', 'com.example.arm': 'only' }],
    ],
  );
  assert.equal(
    entries.map((m) => raw(`${repoOf(ref)}@${m.digest}`).annotations),
    [
      { 'org.opencontainers.image.source': 'https://example.com/src' },
      { 'org.opencontainers.image.source': 'https://example.com/src', 'com.example.arch': 'arm64' },
    ],
  );
  // One platform has no index: refused as BuildKit refuses it; index-descriptor has no place at all.
  for (const [platform, annotation] of [
    ['linux/amd64', 'index:k=v'],
    ['linux/amd64', 'manifest-descriptor:k=v'],
    [Both, 'index-descriptor:k=v'],
  ]) {
    const r = tsbuild(['build', '--platform', platform, '--annotation', annotation, ctx], { root });
    assert.is(r.code, 2, `${platform} ${annotation}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^ERROR: --annotation ${annotation}: .*not supported`, 'm'));
  }
});

test('--annotation [PLATFORM]: matches the platform with its variant (linux/arm/v6 is not linux/arm/v7)', async () => {
  // BuildKit keeps a platform's annotations under platforms.Format of the normalized platform and reads
  // them back for each image's own: manifest[linux/arm/v7] is for the v7 image only. No RUN: no emulation.
  const ref = `${(await registry()).host}/multi/variants:1`;
  const ctx = context({ Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x\n' });
  dirs.push(ctx);
  const annotations = [
    'manifest[linux/arm/v7]:com.example.v=7',
    'manifest-descriptor[linux/arm/v6]:com.example.d=6',
    // linux/arm is v7 once normalized, as containerd (and buildx) normalize it.
    'manifest[linux/arm]:com.example.arm=default-v7',
  ].flatMap((a) => ['--annotation', a]);
  const platforms = ['--platform', 'linux/arm/v6,linux/arm/v7'];
  ok(
    tsbuild(['build', '-q', ...platforms, ...annotations, '-t', ref, '--push', ctx], { root: temp('store-variants') }),
  );
  const entries = raw(ref).manifests as { digest: string; platform: { variant: string }; annotations?: object }[];
  assert.equal(
    entries.map((m) => [m.platform.variant, m.annotations, raw(`${repoOf(ref)}@${m.digest}`).annotations]),
    [
      ['v6', { 'com.example.d': '6' }, undefined],
      ['v7', undefined, { 'com.example.v': '7', 'com.example.arm': 'default-v7' }],
    ],
  );
});

test('--metadata-file with several platforms: the index, as the registry serves it, and buildx.build.ref', async () => {
  const why = noArm64Emulation();
  if (why) return skip(why);
  const ref = `${(await registry()).host}/multi/meta:1`;
  const ctx = busyboxContext();
  const root = temp('store-meta');
  const file = join(temp('meta'), 'metadata.json');
  const local = ok(tsbuild(['build', '-q', '--platform', Both, '-t', ref, '--metadata-file', file, ctx], { root }));
  const stored = JSON.parse(readFileSync(file, 'utf8'));
  assert.is(stored['containerimage.digest'], local.stdout.trim());
  ok(tsbuild(['build', '-q', '--platform', Both, '-t', ref, '--push', '--metadata-file', file, ctx], { root }));
  const meta = JSON.parse(readFileSync(file, 'utf8'));
  const served = sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
  assert.equal(Object.keys(meta).sort(), [
    'buildx.build.ref',
    'containerimage.descriptor',
    'containerimage.digest',
    'image.name',
  ]);
  assert.is(meta['containerimage.digest'], sha256(served));
  assert.equal(meta['containerimage.descriptor'], {
    mediaType: 'application/vnd.oci.image.index.v1+json',
    digest: sha256(served),
    size: Buffer.byteLength(served),
  });
  assert.is(meta['image.name'], ref);
  assert.match(meta['buildx.build.ref'], /^tsbuild\/local\/[a-z0-9]{25}$/);
  assert.is.not(meta['buildx.build.ref'], stored['buildx.build.ref'], 'a new ref per build');
});

test.run();
