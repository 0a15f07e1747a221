// A child process for the crash-safety and concurrency tests.
//   writer.js loop ROOT        ingest blobs, tag them and write cache records until killed
//   writer.js tags ROOT PREFIX N   set N tags PREFIX:0..N-1, then exit
import { randomBytes } from 'node:crypto';
import { Store } from '../../src/store.js';

const [mode, root, prefix, n] = process.argv.slice(2);
const store = await Store.open(root);
const first = await store.blobs.put('{"seed":true}');

if (mode === 'loop') {
  process.send?.('ready');
  for (let i = 0; ; i++) {
    const w = store.blobs.ingest();
    const chunks = 1 + (i % 7);
    for (let c = 0; c < chunks; c++) w.write(randomBytes(1 + Math.floor(Math.random() * 60_000)));
    const { digest, size } = await w.commit();
    await store.tags.set(`crash/app:${process.pid}-${i % 20}`, {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest,
      size,
    });
    await store.cache.put(digest, { value: { i }, blobs: [digest] });
  }
} else if (mode === 'tags') {
  for (let i = 0; i < Number(n); i++) {
    await store.tags.set(`${prefix}:${i}`, {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: first.digest,
      size: first.size,
    });
  }
}
