// Loading an archive of any of the formats index.ts names into the store, every blob verified.
import { promises as fsp } from 'node:fs';
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { MediaType, StoreError, type Descriptor, type Digest, type Image, type Manifest } from '../types.js';
import { isDigest } from '../fsutil.js';
import { familiarName, parseReference } from '../reference.js';
import { manifestDescriptor, readImage } from '../image-read.js';
import { hostPlatform } from '../platform.js';
import { ContainerdNameAnnotation, RefNameAnnotation, type OciIndex } from '../tags.js';
import { validate } from '../validate.js';
import type { Store } from '../store.js';
import { blobPath, tarLib, type DockerManifestEntry } from './tar.js';
import { decompress } from '../layer/compress.js';

export interface LoadedImage {
  /** Fully qualified references it was tagged with (may be empty for unnamed images). */
  names: string[];
  image: Image;
}

const METADATA_LIMIT = 16 << 20;

/** Normalise a member name; throw on anything that could escape or confuse (absolute, .., NUL). */
export function memberName(raw: string): string {
  if (raw.includes('\0') || raw.includes('\\')) throw hostile(raw, 'contains NUL or backslash');
  if (raw.startsWith('/')) throw hostile(raw, 'is absolute');
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw hostile(raw, 'contains ".."');
  return parts.join('/');
}

function hostile(name: string, why: string): StoreError {
  return new StoreError('invalid', `hostile archive member ${JSON.stringify(name)}: ${why}`, name);
}

/**
 * Import every image in an archive into the store and tag it. `input` is the archive's path, or a stream
 * (`docker load` reads stdin); `name` is what errors call a stream ("stdin").
 */
export async function load(store: Store, input: string | Readable, name = 'stdin'): Promise<LoadedImage[]> {
  const file = typeof input === 'string' ? input : name;
  // The file is opened once and read as one stream (a pipe or /dev/stdin cannot be opened twice), and opened
  // before any stream exists: a file that cannot be read is this one error, not also a read stream's 'error'
  // event with no listener yet (Node's crash report after tsbuild's own error line).
  const raw = typeof input === 'string' ? await openArchive(input) : input;
  const files = new Map<string, { digest: Digest; size: number }>(); // member -> blob in the store
  const small = new Map<string, Buffer>();
  const links = new Map<string, string>(); // member -> member it stands for
  const extract = tarLib().extract();

  const consume = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      const name = memberName(h.name);
      if (h.type === 'directory' || name === '') {
        entry.resume();
        continue;
      }
      if (h.type === 'symlink' || h.type === 'link') {
        const target = h.type === 'symlink' ? posix.join(posix.dirname(name), h.linkname) : h.linkname;
        if (posix.isAbsolute(h.linkname) || target.startsWith('..'))
          throw hostile(h.name, `links outside the archive (${h.linkname})`);
        links.set(name, memberName(target));
        entry.resume();
        continue;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') throw hostile(h.name, `unexpected ${h.type} entry`);
      const blob = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
      const isMeta =
        !blob &&
        (h.size ?? 0) <= METADATA_LIMIT &&
        (name.endsWith('.json') || /(^|\/)(json|VERSION|repositories|oci-layout)$/.test(name));
      if (isMeta) {
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        small.set(name, Buffer.concat(chunks));
        continue;
      }
      if (/^blobs\//.test(name) && !blob) throw hostile(h.name, 'is not blobs/sha256/<64 hex>');
      if (!blob && !/(^|\/)layer\.tar$/.test(name)) {
        entry.resume();
        continue;
      } // nothing an image needs
      const ingest = store.blobs.ingest();
      try {
        await pipeline(entry as unknown as Readable, ingest as unknown as NodeJS.WritableStream);
        const expected = blob ? { digest: `sha256:${blob[1]}` as Digest, size: h.size } : { size: h.size };
        files.set(name, await ingest.commit(expected));
      } catch (e) {
        await ingest.abort();
        if (e instanceof StoreError) throw new StoreError(e.code, `${file}: member ${name}: ${e.message}`, e.subject);
        throw e;
      }
    }
  })();

  // One pipeline from the file on, gzip or zstd told from the first bytes as for a layer (`docker save | gzip`):
  // a read error mid-way fails it whether or not the archive is compressed.
  const source = Readable.from(decompress(raw, ''));
  const feeding = pipeline(source, extract as unknown as NodeJS.WritableStream);
  feeding.catch(() => {}); // handled below; this only keeps an early rejection from being "unhandled"
  try {
    await consume;
  } catch (e) {
    extract.destroy();
    source.destroy();
    raw.destroy();
    await feeding.catch(() => {});
    throw e;
  }
  await feeding;

  const resolve = (m: string): string => {
    let cur = memberName(m);
    for (let i = 0; i < 16 && links.has(cur); i++) cur = links.get(cur)!;
    return cur;
  };
  const blobOf = async (member: string): Promise<{ digest: Digest; size: number } | undefined> => {
    const r = resolve(member);
    if (files.has(r)) return files.get(r);
    if (small.has(r)) return store.blobs.put(small.get(r)!);
    const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(r);
    if (m) {
      const d = `sha256:${m[1]}` as Digest;
      const size = await store.blobs.size(d);
      if (size !== undefined) return { digest: d, size };
    }
    return undefined;
  };
  const json = <T>(name: string): T | undefined => {
    const b = small.get(name);
    if (!b) return undefined;
    try {
      return JSON.parse(b.toString('utf8')) as T;
    } catch (e) {
      throw new StoreError('invalid', `${file}: ${name} is not JSON: ${(e as Error).message}`, name);
    }
  };

  // JSON members were held in memory; those under blobs/ must be stored (verified) too.
  for (const [name, bytes] of small) {
    const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
    if (!m) continue;
    const got = await store.blobs.put(bytes);
    if (got.digest !== `sha256:${m[1]}`)
      throw new StoreError('corrupt', `${file}: member ${name} does not match its digest (got ${got.digest})`, name);
    files.set(name, got);
  }

  const dockerManifest = json<DockerManifestEntry[]>('manifest.json');
  const index = json<OciIndex>('index.json');
  const loaded: LoadedImage[] = [];

  if (index && Array.isArray(index.manifests) && index.manifests.length) {
    // One image may be listed once per name: group the names by manifest digest.
    const byDigest = new Map<Digest, { desc: Descriptor; names: Set<string> }>();
    for (const desc of index.manifests) {
      if (!isDigest(desc.digest))
        throw new StoreError('invalid', `${file}: index.json has a bad digest ${desc.digest}`);
      const g = byDigest.get(desc.digest) ?? { desc, names: new Set<string>() };
      byDigest.set(desc.digest, g);
      const full = desc.annotations?.[ContainerdNameAnnotation];
      const refName = desc.annotations?.[RefNameAnnotation];
      // A bare tag ("1") as ref.name names no repository: such an image is loaded untagged.
      if (full) g.names.add(full);
      else if (refName && /[:/]/.test(refName) && !refName.startsWith('sha256:')) g.names.add(refName);
    }
    for (const { desc, names } of byDigest.values()) {
      const image = await readImage(store.blobs, desc, hostPlatform());
      await validate(image, store.blobs);
      for (const e of dockerManifest ?? []) {
        if (resolve(e.Config) === blobPath(image.configDigest)) for (const t of e.RepoTags ?? []) names.add(t);
      }
      // Names as given and as normalised collapse to one tag.
      const unique = new Map<string, string>();
      for (const n of names) {
        try {
          unique.set(normalizeKey(n), n);
        } catch {
          /* unparsable: skipped */
        }
      }
      loaded.push(await tagAll(store, image, desc, [...unique.values()]));
    }
    return loaded;
  }

  if (dockerManifest && Array.isArray(dockerManifest)) {
    for (const e of dockerManifest) {
      const cfg = await blobOf(e.Config);
      if (!cfg)
        throw new StoreError('invalid', `${file}: manifest.json names config ${e.Config}, which is not in the archive`);
      const m = /^([a-f0-9]{64})\.json$/.exec(resolve(e.Config));
      if (m && cfg.digest !== `sha256:${m[1]}`)
        throw new StoreError('corrupt', `${file}: config ${e.Config} does not match its name (got ${cfg.digest})`);
      const layers: Descriptor[] = [];
      for (const l of e.Layers ?? []) {
        const b = await blobOf(l);
        if (!b) throw new StoreError('invalid', `${file}: manifest.json names layer ${l}, which is not in the archive`);
        const magic = await peekBlob(store, b.digest);
        const mediaType =
          magic[0] === 0x1f && magic[1] === 0x8b
            ? MediaType.DockerLayerGzip
            : magic[0] === 0x28 && magic[1] === 0xb5
              ? MediaType.OciLayerZstd
              : 'application/vnd.docker.image.rootfs.diff.tar';
        layers.push({ mediaType, digest: b.digest, size: b.size });
      }
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: MediaType.DockerManifest,
        config: { mediaType: MediaType.DockerConfig, digest: cfg.digest, size: cfg.size },
        layers,
      };
      const put = await store.blobs.put(JSON.stringify(manifest));
      const desc: Descriptor = { mediaType: MediaType.DockerManifest, digest: put.digest, size: put.size };
      const image = await readImage(store.blobs, desc, hostPlatform());
      await validate(image, store.blobs);
      loaded.push(await tagAll(store, image, desc, e.RepoTags ?? []));
    }
    return loaded;
  }
  throw new StoreError(
    'invalid',
    `${file} is neither an OCI archive (index.json) nor a docker archive (manifest.json)`,
    file,
  );
}

function normalizeKey(n: string): string {
  const r = parseReference(n);
  return `${r.registry}/${r.repository}:${r.tag ?? ''}@${r.digest ?? ''}`;
}

async function tagAll(store: Store, image: Image, desc: Descriptor, names: string[]): Promise<LoadedImage> {
  const out: string[] = [];
  const size = (await store.blobs.size(image.manifestDigest)) ?? desc.size;
  for (const n of names) {
    let ref;
    try {
      ref = parseReference(n);
    } catch {
      continue; // an unparsable name in someone else's archive: load the image untagged
    }
    const mediaType = desc.mediaType ?? image.manifest.mediaType ?? MediaType.OciManifest;
    const stored = await store.images.tagDescriptor(n, { ...manifestDescriptor(image, size), mediaType });
    out.push(stored.annotations?.[ContainerdNameAnnotation] ?? familiarName(ref));
  }
  return { names: out, image };
}

/** An archive file opened for reading; a directory is an error naming it (its read would say only EISDIR). */
async function openArchive(file: string): Promise<Readable> {
  const fh = await fsp.open(file, 'r');
  try {
    if ((await fh.stat()).isDirectory())
      throw new StoreError('invalid', `${file}: is a directory, not an archive`, file);
  } catch (e) {
    await fh.close();
    throw e;
  }
  return fh.createReadStream();
}

async function peek(file: string, n: number): Promise<Buffer> {
  const fh = await fsp.open(file, 'r');
  try {
    const b = Buffer.alloc(n);
    const { bytesRead } = await fh.read(b, 0, n, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function peekBlob(store: Store, d: Digest): Promise<Buffer> {
  return peek(store.blobs.path(d), 4);
}
