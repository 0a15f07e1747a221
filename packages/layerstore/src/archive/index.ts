// `archive`: images as one tar file.
//   write(..., { format: 'oci' })    an OCI image layout as a tar (what `skopeo copy oci-archive:` reads)
//   write(..., { format: 'docker' }) what docker 25+ `docker save` writes: an OCI layout AND a docker
//                                    archive (manifest.json with Config/RepoTags/Layers pointing at
//                                    blobs/sha256/<hex>, plus `repositories`), so both `docker load`
//                                    and OCI tools accept it
//   stream(store, images, opts)      either, as a stream (docker's image-load endpoint)
//   load(store, file)                imports any of those, old `docker save` archives (v1.2:
//                                    <id>/layer.tar, <id>/json, <config>.json), and gzipped archives
// Tars are streamed with tar-stream; layer bytes never sit in memory. Every blob that comes in is
// verified as it streams into the store (blobs/sha256/<hex> members against their name; old-format
// layers get their digest computed, then the whole image goes through validate()).
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type * as TarStream from 'tar-stream';
import { createRequire } from 'node:module';

// tar-stream is loaded when an archive is read or written, not when the store opens.
let tarModule: typeof TarStream | undefined;
const tarLib = (): typeof TarStream => (tarModule ??= createRequire(import.meta.url)('tar-stream') as typeof TarStream);
import { MediaType, StoreError, type Descriptor, type Digest, type Image, type Manifest } from '../types.js';
import { hexOf, isDigest, randomId, fsyncDir } from '../fsutil.js';
import { familiarName, parseReference } from '../reference.js';
import { manifestDescriptor, readImage } from '../images.js';
import { ContainerdNameAnnotation, RefNameAnnotation, type OciIndex } from '../tags.js';
import { imageBlobs, nameAnnotations, type NamedImage } from '../layout/index.js';
import { validate } from '../validate.js';
import type { Store } from '../store.js';

export type ArchiveFormat = 'oci' | 'docker';

/** manifest.json of a docker archive. */
export interface DockerManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

const blobPath = (d: Digest) => `blobs/sha256/${hexOf(d)}`;

interface ArchivePlan {
  format: ArchiveFormat;
  index: OciIndex;
  manifestJSON: DockerManifestEntry[];
  repositories: Record<string, Record<string, string>>;
  /** Every blob the archive holds, with its size (tar headers come before the bytes). */
  blobs: Map<Digest, number>;
}

/** What goes into the archive, every blob checked to be in the store before a byte is written. */
async function plan(store: Store, images: NamedImage[], format: ArchiveFormat): Promise<ArchivePlan> {
  const index: OciIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
  const manifestJSON: DockerManifestEntry[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const blobs = new Map<Digest, number>();
  for (const { image, name } of images) {
    const size = await store.blobs.size(image.manifestDigest);
    if (size === undefined)
      throw new StoreError('not-found', `manifest ${image.manifestDigest} is not in the store`, image.manifestDigest);
    for (const d of imageBlobs(image)) {
      const s = await store.blobs.size(d);
      if (s === undefined)
        throw new StoreError('not-found', `blob ${d} of image ${image.manifestDigest} is not in the store`, d);
      blobs.set(d, s);
    }
    index.manifests.push({
      ...manifestDescriptor(image, size),
      ...(name ? { annotations: nameAnnotations(name) } : {}),
    });
    if (format === 'docker') {
      const familiar = name ? familiarName(parseReference(name)) : undefined;
      const entry = manifestJSON.find((e) => e.Config === blobPath(image.configDigest));
      if (entry) {
        if (familiar) (entry.RepoTags ??= []).push(familiar);
      } else {
        manifestJSON.push({
          Config: blobPath(image.configDigest),
          RepoTags: familiar ? [familiar] : null,
          Layers: image.layers.map((l) => blobPath(l.digest)),
        });
      }
      if (name && image.layers.length) {
        const ref = parseReference(name);
        if (ref.tag)
          (repositories[familiarName({ ...ref, tag: undefined })] ??= {})[ref.tag] = hexOf(
            image.layers[image.layers.length - 1].digest,
          );
      }
    }
  }
  return { format, index, manifestJSON, repositories, blobs };
}

/** Writes the plan's entries into pack (blobs streamed from the store) and finalizes it. */
async function packEntries(store: Store, p: ArchivePlan, pack: TarStream.Pack): Promise<void> {
  const small = (name: string, body: string) =>
    new Promise<void>((res, rej) =>
      pack.entry({ name, mode: 0o644, mtime: new Date(0) }, body, (e) => (e ? rej(e) : res())),
    );
  const dir = (name: string) =>
    new Promise<void>((res, rej) =>
      pack.entry({ name, type: 'directory', mode: 0o755, mtime: new Date(0) }, (e) => (e ? rej(e) : res())),
    );
  await dir('blobs');
  await dir('blobs/sha256');
  for (const [d, size] of p.blobs) {
    await new Promise<void>((res, rej) => {
      const sink = pack.entry({ name: blobPath(d), size, mode: 0o444, mtime: new Date(0) }, (e) =>
        e ? rej(e) : res(),
      );
      const src = store.blobs.open(d);
      src.on('error', (e) => {
        sink.destroy(e);
        rej(e);
      });
      // The pack destroyed under it (a consumer that went away): the entry fails, the blob stops.
      sink.on('error', (e: Error) => {
        src.destroy();
        rej(e);
      });
      src.pipe(sink as unknown as NodeJS.WritableStream);
    });
  }
  await small('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await small('index.json', JSON.stringify(p.index));
  if (p.format === 'docker') {
    await small('manifest.json', JSON.stringify(p.manifestJSON));
    await small('repositories', JSON.stringify(p.repositories));
  }
  pack.finalize();
}

/**
 * Write images to a tar at file (atomically: a temp file renamed into place). Several names may point
 * at one image; blobs are written once.
 */
export async function write(
  store: Store,
  images: NamedImage[],
  file: string,
  opts: { format?: ArchiveFormat } = {},
): Promise<void> {
  const p = await plan(store, images, opts.format ?? 'oci');
  const tmp = `${file}.tmp-${randomId()}`;
  const pack = tarLib().pack();
  const out = createWriteStream(tmp, { flags: 'wx' });
  const done = pipeline(pack as unknown as Readable, out);
  try {
    await packEntries(store, p, pack);
    await done;
    const fh = await fsp.open(tmp, 'r');
    await fh.sync();
    await fh.close();
    await fsp.rename(tmp, file);
    await fsyncDir(posix.dirname(file));
  } catch (e) {
    pack.destroy();
    await done.catch(() => {});
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/**
 * The same archive as a stream, for a consumer that reads one (Docker's image-load endpoint): blobs
 * are read from the store as the stream is consumed, so memory stays flat. A failure destroys the
 * stream with the error.
 */
export async function stream(
  store: Store,
  images: NamedImage[],
  opts: { format?: ArchiveFormat } = {},
): Promise<Readable> {
  const p = await plan(store, images, opts.format ?? 'oci');
  const pack = tarLib().pack();
  packEntries(store, p, pack).catch((e: Error) => pack.destroy(e));
  return pack as unknown as Readable;
}

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

/** Import every image in an archive into the store and tag it. */
export async function load(store: Store, file: string): Promise<LoadedImage[]> {
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

  const source = createReadStream(file);
  const head = await peek(file, 2);
  const input: Readable = head[0] === 0x1f && head[1] === 0x8b ? source.pipe(createGunzip()) : source;
  const feeding = pipeline(input, extract as unknown as NodeJS.WritableStream);
  feeding.catch(() => {}); // handled below; this only keeps an early rejection from being "unhandled"
  try {
    await consume;
  } catch (e) {
    extract.destroy();
    source.destroy();
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
      const image = await readImage(store.blobs, desc);
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
      const image = await readImage(store.blobs, desc);
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
