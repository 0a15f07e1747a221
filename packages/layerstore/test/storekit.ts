// Shared test helpers: temp stores, tiny layers built with tar-stream, stream utilities.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import * as tar from 'tar-stream';
import { Store } from '../src/store.js';
import { MediaType, type Digest, type ImageConfig, type Layer } from '../src/types.js';

export async function tempRoot(prefix = 'ls-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function tempStore(): Promise<{ store: Store; dir: string; cleanup: () => Promise<void> }> {
  const t = await tempRoot();
  return { store: await Store.open(join(t.dir, 'store')), ...t };
}

export function sha(b: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export async function collect(r: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink';
  content?: string;
  mode?: number;
  linkname?: string;
}

/** An uncompressed layer tar from a list of entries (deterministic: mtime 0). */
export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const out = collect(pack as unknown as NodeJS.ReadableStream);
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      mtime: new Date(0),
      uid: 0,
      gid: 0,
      linkname: e.linkname,
    };
    if (type === 'file') pack.entry(header, e.content ?? '');
    else pack.entry(header);
  }
  pack.finalize();
  return out;
}

export async function gzip(buf: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(
    Readable.from([buf]),
    createGzip(),
    new Writable({
      write(c, _e, cb) {
        chunks.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(chunks);
}

/** Put a gzip layer made of these entries into the store. */
export async function addLayer(store: Store, entries: TarEntry[]): Promise<Layer> {
  const raw = await makeTar(entries);
  const gz = await gzip(raw);
  const { digest, size } = await store.blobs.put(gz);
  return { digest, size, diffID: sha(raw), mediaType: MediaType.OciLayerGzip };
}

export function baseConfig(extra: Partial<ImageConfig> = {}): ImageConfig {
  return {
    created: '2024-01-02T03:04:05Z',
    architecture: 'amd64',
    os: 'linux',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['/bin/sh'],
      Healthcheck: { Test: ['CMD', 'true'], Interval: 30_000_000_000 },
      Shell: ['/bin/sh', '-c'],
      OnBuild: ['RUN echo hi'],
      StopSignal: 'SIGTERM',
      Labels: { 'org.example': 'yes' },
    },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
    ...extra,
  };
}

/** Two layers; the second deletes /etc/removed (a whiteout) and adds /app/hello. */
export async function sampleImage(store: Store, format: 'oci' | 'docker' = 'oci') {
  const l1 = await addLayer(store, [
    { name: 'etc/', type: 'directory' },
    { name: 'etc/removed', content: 'bye\n' },
    { name: 'etc/kept', content: 'kept\n' },
    { name: 'bin/', type: 'directory' },
  ]);
  const l2 = await addLayer(store, [
    { name: 'etc/', type: 'directory' },
    { name: 'etc/.wh.removed', content: '' },
    { name: 'app/', type: 'directory' },
    { name: 'app/hello', content: 'hello world\n', mode: 0o755 },
    { name: 'app/link', type: 'symlink', linkname: 'hello' },
  ]);
  const cfg = baseConfig({
    rootfs: { type: 'layers', diff_ids: [l1.diffID, l2.diffID] },
    history: [{ created_by: 'layer 1' }, { created_by: 'layer 2' }],
  });
  return store.images.write({ config: cfg, layers: [l1, l2], format });
}
