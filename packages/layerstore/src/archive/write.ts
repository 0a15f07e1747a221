// Writing images as one tar, to a file or as a stream (see index.ts for the formats).
import { createWriteStream, promises as fsp } from 'node:fs';
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { MediaType, StoreError, type Digest } from '../types.js';
import { hexOf, randomId, fsyncDir } from '../fsutil.js';
import { familiarName, parseReference } from '../reference.js';
import { manifestDescriptor } from '../image-read.js';
import type { OciIndex } from '../tags.js';
import { imageBlobs, nameAnnotations, type NamedImage } from '../layout/index.js';
import type { Store } from '../store.js';
import type * as TarStream from 'tar-stream';
import { blobPath, tarLib, type ArchiveFormat, type DockerManifestEntry } from './tar.js';

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
      src.pipe(sink);
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
    // ENOTDIR: FILE's "directory" is a file, so the temp file was never made.
    await fsp.rm(tmp, { force: true }).catch((r: NodeJS.ErrnoException) => {
      if (r.code !== 'ENOTDIR') throw r;
    });
    throw aboutFile(e, tmp, file);
  }
}

/** An error about the temp file beside `file` (its directory is not there, not writable) said of `file`. */
function aboutFile(e: unknown, tmp: string, file: string): unknown {
  const err = e as NodeJS.ErrnoException;
  if (err?.path !== tmp) return e;
  const why = err.code === 'ENOENT' || err.code === 'ENOTDIR' ? 'no such directory' : err.message.replaceAll(tmp, file);
  return Object.assign(new Error(`${file}: ${why}`), { code: err.code });
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
