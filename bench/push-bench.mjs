#!/usr/bin/env node
// Push benchmark: tsbuild's registry client vs `skopeo copy`, same generated image, same local
// docker-registry (127.0.0.1, temp storage). First push into an empty repository, then a
// repeated push of the same image (which should send no blob bytes).
//   node bench/push-bench.mjs [--layers N] [--mib M] [--runs R]
// Needs `pnpm exec tsc -b packages/layerstore` first (uses the built dist/).
import { writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'packages/layerstore/dist');
const remote = await import(path.join(dist, 'src/remote/index.js'));
const { startRegistry } = await import(path.join(root, 'packages/testkit/dist/src/registry.js'));
const { makeImage, newBlobStore, skopeo } = await import(path.join(dist, 'test/helpers/registry-image.js'));

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const layers = arg('layers', 4);
const mib = arg('mib', 8);
const runs = arg('runs', 3);

const { blobs, root: storeRoot } = newBlobStore();
const img = await makeImage(blobs, Array.from({ length: layers }, () => mib * 1024 * 1024), 7);
// Make the store directory an OCI layout too, so skopeo reads the very same blobs.
writeFileSync(path.join(storeRoot, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
writeFileSync(path.join(storeRoot, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: img.manifest.mediaType, digest: img.manifestDigest, size: img.manifestBytes.length, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }));

const reg = await startRegistry();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = async (fn) => { const t = performance.now(); await fn(); return performance.now() - t; };
const ours = { first: [], repeat: [] };
const theirs = { first: [], repeat: [] };
try {
  for (let r = 0; r < runs; r++) {
    const refOurs = `${reg.host}/bench/ours${r}:1`;
    const refSkopeo = `${reg.host}/bench/skopeo${r}:1`;
    const opts = { credentials: remote.noCredentials, concurrency: arg('concurrency', 3) };
    const copy = () => skopeo(['--insecure-policy', 'copy', '-q', '--dest-tls-verify=false', `oci:${storeRoot}:bench`, `docker://${refSkopeo}`], 600_000);
    // Alternate who goes first so page-cache warmth does not favour one side.
    if (r % 2 === 0) {
      ours.first.push(await time(() => remote.push(blobs, { manifestDigest: img.manifestDigest }, refOurs, opts)));
      theirs.first.push(await time(copy));
    } else {
      theirs.first.push(await time(copy));
      ours.first.push(await time(() => remote.push(blobs, { manifestDigest: img.manifestDigest }, refOurs, opts)));
    }
    const again = { value: undefined };
    ours.repeat.push(await time(async () => { again.value = await remote.push(blobs, { manifestDigest: img.manifestDigest }, refOurs, opts); }));
    if (again.value.stats.bytesUploaded !== 0) throw new Error('repeated push uploaded bytes');
    theirs.repeat.push(await time(copy));
  }
} finally {
  await reg.stop();
  rmSync(storeRoot, { recursive: true, force: true });
}
const fmt = (ms) => `${ms.toFixed(0)} ms`;
const mb = img.totalSize / 1024 / 1024;
console.log(`image: ${layers} layers x ${mib} MiB (random, gzip level 1), ${mb.toFixed(1)} MiB in all; ${runs} runs, medians`);
console.log(`| push | tsbuild | skopeo copy | tsbuild / skopeo |`);
console.log(`|---|---|---|---|`);
for (const k of ['first', 'repeat']) {
  const a = median(ours[k]);
  const b = median(theirs[k]);
  console.log(`| ${k} | ${fmt(a)}${k === 'first' ? ` (${(mb / (a / 1000)).toFixed(0)} MiB/s)` : ''} | ${fmt(b)} | ${(a / b).toFixed(2)} |`);
}
