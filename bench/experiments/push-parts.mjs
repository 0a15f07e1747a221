// The parts of a streamed layer push, on one layer of a store, each into a fresh docker-registry, ROUNDS times in
// turn: the compressed blob uploaded from the store (POST + one PUT), the same bytes streamed (POST + chunked PATCH
// + PUT), and the plain tar compressed + teed into the store + streamed (what a push of a new layer does).
// Wall and CPU of this process (the registry's not counted).
//   node bench/experiments/push-parts.mjs STORE GZIP_DIGEST TAR_DIGEST [ROUNDS]
// STORE: a tsbuild store (TSBUILD_ROOT) after a `build --push`; TAR_DIGEST a layer's plain tar (its diffID),
// GZIP_DIGEST its compressed blob (`ls -S STORE/blobs/sha256` shows both). After `pnpm run build`.
import { createReadStream, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const d = join(repo, 'packages/layerstore/dist/src');
const [storeDir, gz, tar, rounds = '3'] = process.argv.slice(2);
if (!tar) {
  console.error('usage: push-parts.mjs STORE GZIP_DIGEST TAR_DIGEST [ROUNDS]');
  process.exit(2);
}
const { Store, layerCodec } = await import(join(d, 'index.js'));
const { RegistryClient } = await import(join(d, 'remote/client.js'));
const { uploadBlob } = await import(join(d, 'remote/blob-upload.js'));
const { uploadStream } = await import(join(d, 'remote/stream-upload.js'));
const { newStats } = await import(join(d, 'remote/blob.js'));
const { startRegistry } = await import(join(repo, 'packages/testkit/dist/src/registry.js'));
const store = await Store.open(storeDir);
const gzDesc = { mediaType: 'application/octet-stream', digest: gz, size: await store.blobs.size(gz) };
const plain = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: tar, diffID: tar };
plain.size = await store.blobs.size(tar);
const parts = {
  'PUT from the store': (c) => uploadBlob(c, 'parts/x', gzDesc, store.blobs, newStats()),
  'PATCH stream, same bytes': (c) => {
    const src = createReadStream(store.blobs.path(gz), { highWaterMark: 1 << 20 });
    return uploadStream(c, 'parts/x', src, Promise.resolve(gzDesc), newStats());
  },
  'compress + tee + stream': async (c) => {
    const s = layerCodec(store).stream(plain, 'gzip');
    await uploadStream(c, 'parts/x', s.pieces, s.written, newStats());
    await s.done;
  },
};
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
const out = {};
for (let i = 0; i < Number(rounds); i++) {
  for (const [name, fn] of Object.entries(parts)) {
    const reg = await startRegistry();
    const client = new RegistryClient(reg.host, {});
    const l = load();
    const t0 = performance.now();
    const u0 = process.cpuUsage();
    await fn(client);
    const cpu = process.cpuUsage(u0);
    const ms = performance.now() - t0;
    (out[name] ??= []).push(`${ms.toFixed(0)} ms (CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)}, load ${l})`);
    await reg.stop();
  }
}
for (const [k, v] of Object.entries(out)) console.log(k.padEnd(26), v.join('  '));
process.exit(0);
