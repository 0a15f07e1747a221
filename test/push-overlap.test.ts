// `build --push` uploads each layer as soon as the build has written it, while the later steps
// still run (builder/src/exporter/push.ts earlyPush, layerstore's remote/uploads.ts); the manifest
// goes up only after the build and every upload have finished, and never for a failed build.
// Checked through the CLI against a real `docker-registry`, without timing anything: the last
// step of each build waits for a gate file that the test creates only once it has seen, in the
// registry's own storage, a layer of an earlier step committed to the repository.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tsbuild, tsbuildAsync, tempDirs } from './helpers/cli.js';
import { inspect } from './helpers/image.js';
import { startRegistry, type TestRegistry } from '@tsbuild/testkit';

let reg: TestRegistry;
const { temp, dirs } = tempDirs();

test.before(async () => {
  reg = await startRegistry();
});
test.after(async () => {
  await reg?.stop();
  cleanup(...dirs);
});

const GateId = 'push-overlap-gate';
/** The host side of the gate step's cache mount (builder/src/solver/ops/cachemounts.ts cacheMountPath). */
const gateDir = (root: string) =>
  join(root, 'builder', 'cachemounts', createHash('sha256').update(GateId).digest('hex').slice(0, 32));

/** ~1 MB of text: a layer that takes the compressed path of the push. */
const data = Array.from({ length: 20_000 }, (_, i) => `line ${i} of the layer uploaded while the build runs\n`).join(
  '',
);

/** COPY makes a layer; the RUN after it waits for the gate, then ends with `last`. */
const dockerfile = (last: string) =>
  `FROM ${Base}\nCOPY data.txt /data.txt\n` +
  `RUN --mount=type=cache,id=${GateId},target=/gate sh -c 'until [ -f /gate/open ]; do sleep 0.05; done; ${last}'\n` +
  'CMD ["cat", "/gated.txt"]\n';

/** Where docker-registry (filesystem driver) records what a repository holds. */
const repoDir = (repo: string) => join(reg.dir, 'data', 'docker', 'registry', 'v2', 'repositories', repo);
const linked = (repo: string, digest: string) =>
  existsSync(join(repoDir(repo), '_layers', 'sha256', digest.replace(/^sha256:/, ''), 'link'));

/** Trace lines of blobs that landed: `push: layer DIFFID as blob DIGEST OUTCOME`. */
const landed = (stderr: string) =>
  [...stderr.matchAll(/push: layer (sha256:[0-9a-f]{64}) as blob (sha256:[0-9a-f]{64}) (\w+)/g)].map((m) => ({
    diffID: m[1],
    digest: m[2],
  }));

/**
 * Runs a traced `build --push` whose gate step waits; once a layer that is not the base's has
 * landed in the registry (said by the trace, seen in the registry's storage), checks the manifest
 * is not there yet and opens the gate. A build that never gets there would wait forever: after a
 * generous deadline the gate is opened anyway and `forced` says so (a failure, not a timing).
 */
async function gatedPush(root: string, repo: string, ctx: string) {
  const baseDiffIDs = new Set<string>(inspect(root, Base).ImageConfig.rootfs.diff_ids);
  const ref = `${reg.host}/${repo}:1`;
  const child = tsbuildAsync(['build', '--progress=plain', '--push', '-t', ref, ctx], {
    root,
    env: { TSBUILD_TRACE: '1', SOURCE_DATE_EPOCH: '1700000000' },
  });
  const open = () => {
    mkdirSync(gateDir(root), { recursive: true });
    writeFileSync(join(gateDir(root), 'open'), '');
  };
  let stderr = '';
  let forced = false;
  let seen: { diffID: string; digest: string } | undefined;
  let manifestBefore: boolean | undefined;
  const timer = setTimeout(() => {
    forced = true;
    open();
  }, 180_000);
  child.stdout.resume();
  child.stderr.on('data', (b) => {
    stderr += b;
    if (seen) return;
    seen = landed(stderr).find((l) => !baseDiffIDs.has(l.diffID) && linked(repo, l.digest));
    if (!seen) return;
    manifestBefore = existsSync(join(repoDir(repo), '_manifests'));
    open();
  });
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearTimeout(timer);
  return { ref, code, stderr, forced, seen, manifestBefore };
}

const manifestStatus = async (repo: string) =>
  (
    await fetch(`http://${reg.host}/v2/${repo}/manifests/1`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    })
  ).status;

test('build --push: a layer is in the registry before the last step ends; the image pulls and runs', async () => {
  const root = storeWithBase(temp('store'));
  const ctx = context({ Dockerfile: dockerfile('echo gated > /gated.txt'), 'data.txt': data });
  dirs.push(ctx);
  const r = await gatedPush(root, 'overlap/ok', ctx);
  assert.is(r.forced, false, `the COPY layer never landed while the gate step waited:\n${r.stderr}`);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.manifestBefore, false, 'no manifest while the build was still running');
  // The layer uploaded early is the one the pushed manifest names, compressed.
  const manifest = (await (
    await fetch(`http://${reg.host}/v2/overlap/ok/manifests/1`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    })
  ).json()) as { layers: { digest: string; mediaType: string }[] };
  const layer = manifest.layers.find((l) => l.digest === r.seen!.digest);
  assert.ok(layer, `the manifest names ${r.seen!.digest}`);
  assert.is(layer!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  // Each layer compressed once, though it was asked for during the build and by the push after it.
  assert.match(r.stderr, /compressed 3 layers \(gzip\)/);

  const fresh = temp('pulled');
  ok(tsbuild(['pull', r.ref], { root: fresh }));
  const out = ok(tsbuild(['run', '--rm', r.ref, 'sh', '-c', 'cat /gated.txt; wc -l < /data.txt'], { root: fresh }));
  assert.equal(out.stdout.trim().split('\n'), ['gated', '20000']);
});

test('build --push that fails after a layer went up pushes no manifest', async () => {
  const root = storeWithBase(temp('store-fail'));
  const ctx = context({ Dockerfile: dockerfile('exit 3'), 'data.txt': data });
  dirs.push(ctx);
  const r = await gatedPush(root, 'overlap/fail', ctx);
  assert.is(r.forced, false, `the COPY layer never landed while the gate step waited:\n${r.stderr}`);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /exit code: 3|exited with 3|code 3/);
  assert.ok(linked('overlap/fail', r.seen!.digest), 'the layer uploaded before the failure stays');
  assert.is(existsSync(join(repoDir('overlap/fail'), '_manifests')), false, 'no manifest in the repository');
  assert.is(await manifestStatus('overlap/fail'), 404);
  // The store is whole, and the next push of the same layer finds it compressed already.
  ok(tsbuild(['check'], { root }));
});

test('build --push: a base layer the registry has in another repository is mounted, not uploaded', async () => {
  const root = storeWithBase(temp('store-mount'));
  // The base pushed before (compressed and remembered then; its location recorded), as another repository.
  const base = `${reg.host}/overlap/base:1`;
  ok(tsbuild(['tag', Base, base], { root }));
  ok(tsbuild(['push', base], { root }));
  const baseManifest = (await (
    await fetch(`http://${reg.host}/v2/overlap/base/manifests/1`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    })
  ).json()) as { layers: { digest: string }[] };
  const ctx = context({ Dockerfile: `FROM ${Base}\nCOPY data.txt /data.txt\n`, 'data.txt': data });
  dirs.push(ctx);
  const r = ok(
    tsbuild(['build', '--progress=plain', '--push', '-t', `${reg.host}/overlap/mounted:1`, ctx], {
      root,
      env: { TSBUILD_TRACE: '1' },
    }),
  );
  for (const l of baseManifest.layers) assert.match(r.stderr, `push: blob ${l.digest} mounted`);
  assert.match(r.stderr, /compressed 1 layers \(gzip\)/, 'only the new layer was compressed');
  assert.is(await manifestStatus('overlap/mounted'), 200);
});

test('build --platform a,b --push: the index joins the early uploads; a layer both images share: once', async () => {
  const root = temp('store-index');
  // No base and no RUN: both platforms' images have the same one layer (same diffID), made by each build.
  const ctx = context({ Dockerfile: 'FROM scratch\nCOPY data.txt /data.txt\n', 'data.txt': data });
  dirs.push(ctx);
  const ref = `${reg.host}/overlap/index:1`;
  const r = ok(
    tsbuild(['build', '--progress=plain', '--platform', 'linux/amd64,linux/arm64', '--push', '-t', ref, ctx], {
      root,
      env: { TSBUILD_TRACE: '1', SOURCE_DATE_EPOCH: '1700000000' },
    }),
  );
  assert.match(r.stderr, /compressed 1 layers \(gzip\)/, 'the shared layer was compressed once');
  assert.is(landed(r.stderr).length, 1, 'and streamed up once');
  // Joined, not looked up again: a push of its own would HEAD the blob and find it ("exists").
  assert.not.match(r.stderr, `blob ${landed(r.stderr)[0].digest} exists`);
  const index = (await (
    await fetch(`http://${reg.host}/v2/overlap/index/manifests/1`, {
      headers: { accept: 'application/vnd.oci.image.index.v1+json' },
    })
  ).json()) as { manifests: { digest: string; platform: { architecture: string } }[] };
  assert.equal(index.manifests.map((m) => m.platform.architecture).sort(), ['amd64', 'arm64']);
  for (const m of index.manifests) {
    const image = (await (
      await fetch(`http://${reg.host}/v2/overlap/index/manifests/${m.digest}`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      })
    ).json()) as { layers: { digest: string; mediaType: string }[] };
    assert.equal(
      image.layers.map((l) => [l.digest, l.mediaType]),
      [[landed(r.stderr)[0].digest, 'application/vnd.oci.image.layer.v1.tar+gzip']],
    );
  }
});

test.run();
