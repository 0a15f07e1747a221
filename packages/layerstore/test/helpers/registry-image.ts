// Small images for registry tests: gzip tar layers built in memory from (seeded) random
// files, written into a FileBlobStore with config and manifest, plus skopeo wrappers.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { FileBlobStore } from '../../src/blobs.js';
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Manifest } from '../../src/types.js';

const run = promisify(execFile);
export const sha256 = (b: Buffer | string): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Deterministic pseudo-random bytes (xorshift), incompressible enough for size tests. */
export function noise(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    if ((i & 3) === 0) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
    }
    b[i] = (x >>> ((i & 3) * 8)) & 0xff;
  }
  return b;
}

/** A ustar archive of regular files. */
export function tar(files: Array<{ name: string; data: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const h = Buffer.alloc(512);
    h.write(f.name, 0, 100, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(f.data.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const c of h) sum += c;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    parts.push(h, f.data, Buffer.alloc((512 - (f.data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export interface TestImage {
  manifestDigest: Digest;
  manifestBytes: Buffer;
  manifest: Manifest;
  config: Descriptor;
  layers: Descriptor[];
  /** Sum of all blob sizes (config + layers + manifest). */
  totalSize: number;
}

export function newBlobStore(): { blobs: FileBlobStore; root: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'tsbuild-remote-store-'));
  mkdirSync(path.join(root, 'blobs', 'sha256'), { recursive: true });
  mkdirSync(path.join(root, 'tmp'), { recursive: true });
  return { blobs: new FileBlobStore(root, path.join(root, 'tmp')), root };
}

/** Build an image with layers of the given (uncompressed payload) sizes into the store. */
export async function makeImage(
  blobs: FileBlobStore,
  layerSizes: number[],
  seed = 1,
  docker = false,
): Promise<TestImage> {
  const layers: Descriptor[] = [];
  const diffIDs: Digest[] = [];
  for (const [i, size] of layerSizes.entries()) {
    const t = tar([
      { name: `layer${i}/file.bin`, data: noise(size, seed * 1000 + i) },
      { name: `layer${i}/seed.txt`, data: Buffer.from(`seed ${seed} layer ${i}\n`) },
    ]);
    diffIDs.push(sha256(t));
    const gz = gzipSync(t, { level: 1 });
    const put = await blobs.put(gz);
    layers.push({
      mediaType: docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip,
      digest: put.digest,
      size: put.size,
    });
  }
  const config: ImageConfig = {
    created: '2024-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: diffIDs },
    history: layerSizes.map((_, i) => ({
      created: '2024-01-01T00:00:00Z',
      created_by: `test layer ${i} seed ${seed}`,
    })),
  };
  const c = await blobs.put(JSON.stringify(config));
  const configDesc: Descriptor = {
    mediaType: docker ? MediaType.DockerConfig : MediaType.OciConfig,
    digest: c.digest,
    size: c.size,
  };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
    config: configDesc,
    layers,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const m = await blobs.put(manifestBytes);
  return {
    manifestDigest: m.digest,
    manifestBytes,
    manifest,
    config: configDesc,
    layers,
    totalSize: c.size + m.size + layers.reduce((a, l) => a + l.size, 0),
  };
}

export async function skopeo(args: string[], timeoutMs = 60_000): Promise<string> {
  try {
    const { stdout } = await run('skopeo', args, { timeout: timeoutMs, maxBuffer: 16 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`skopeo ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}
