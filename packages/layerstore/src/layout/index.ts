// `layout`: OCI image layouts on disk (https://github.com/opencontainers/image-spec/blob/main/image-layout.md).
//
// Naming: index.json descriptors carry `org.opencontainers.image.ref.name` = the tag only ("1" for
// app:1) — the OCI convention that skopeo's `oci:DIR:REF` and containerd/BuildKit's OCI exporter follow —
// and `io.containerd.image.name` = the full reference (docker.io/library/app:1) so that nothing is lost.
// So `skopeo inspect oci:DIR:1` finds the image written for `app:1`.
import { constants, promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StoreError, MediaType, type Descriptor, type Digest, type Image } from '../types.js';
import { checkDigest, fsyncDir, hexOf, randomId, writeFileAtomic, exists } from '../fsutil.js';
import { parseReference, formatReference } from '../reference.js';
import { readImage, manifestDescriptor, type BlobSource } from '../image-read.js';
import { hostPlatform, type Platform } from '../platform.js';
import { ContainerdNameAnnotation, RefNameAnnotation, type OciIndex } from '../tags.js';
import type { Store } from '../store.js';

export interface NamedImage {
  image: Image;
  /** A reference (app:1); omitted means no name annotations. */
  name?: string;
}

/** Annotations naming an image in an exported layout/archive (see the header comment). */
export function nameAnnotations(name: string | undefined): Record<string, string> {
  if (!name) return {};
  const ref = parseReference(name);
  const full = formatReference(ref);
  return { [ContainerdNameAnnotation]: full, [RefNameAnnotation]: ref.tag ?? ref.digest ?? 'latest' };
}

/** The digests of every blob an image needs: manifest, config, layers. */
export function imageBlobs(image: Image): Digest[] {
  return [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)];
}

/**
 * Write an OCI image layout at dir holding these images. Blobs are hardlinked from the store when
 * dir is on the same filesystem (they are read-only and content-addressed), else copied through the
 * verifying reader. An existing layout at dir is extended; entries with the same ref name are replaced.
 */
export async function write(store: Store, images: NamedImage[], dir: string): Promise<OciIndex> {
  const blobDir = join(dir, 'blobs', 'sha256');
  await fsp.mkdir(blobDir, { recursive: true });
  for (const { image } of images) {
    for (const d of imageBlobs(image)) await copyBlob(store, d, join(blobDir, hexOf(d)));
  }
  await writeFileAtomic(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  let index: OciIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
  if (await exists(join(dir, 'index.json'))) {
    try {
      const text = await readMember(join(dir, 'index.json'), `${join(dir, 'index.json')}`, dir);
      index = JSON.parse(text.toString('utf8'));
    } catch {
      /* replace a broken index */
    }
  }
  for (const { image, name } of images) {
    const size = (await store.blobs.size(image.manifestDigest))!;
    const annotations = nameAnnotations(name);
    const desc: Descriptor = { ...manifestDescriptor(image, size), ...(name ? { annotations } : {}) };
    index.manifests = index.manifests.filter(
      (m) =>
        !(
          name &&
          m.annotations?.[RefNameAnnotation] === annotations[RefNameAnnotation] &&
          m.annotations?.[ContainerdNameAnnotation] === annotations[ContainerdNameAnnotation]
        ),
    );
    if (!name) index.manifests = index.manifests.filter((m) => m.digest !== image.manifestDigest || m.annotations);
    index.manifests.push(desc);
  }
  await writeFileAtomic(join(dir, 'index.json'), JSON.stringify(index));
  return index;
}

async function copyBlob(store: Store, d: Digest, dest: string): Promise<void> {
  if (await exists(dest)) return;
  try {
    await fsp.link(store.blobs.path(d), dest);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'EXDEV' && code !== 'EPERM') throw e;
  }
  // As every blob: verified as it is read, fsynced, then renamed; a failure leaves no temp file.
  const tmp = `${dest}.tmp-${randomId()}`;
  try {
    // flush: the stream fsyncs the file before it closes it.
    await pipeline(store.blobs.open(d), (await fsp.open(tmp, 'wx', 0o444)).createWriteStream({ flush: true }));
    await fsp.rename(tmp, dest);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(join(dest, '..'));
}

/** JSON members (index.json, manifests, configs) are read whole: no more than this. */
const MetadataLimit = 16 << 20;

/**
 * Opens a member of a layout that may come from anywhere: never through a symlink (O_NOFOLLOW; a
 * link could name a host file or /dev/zero), never a FIFO or device (O_NONBLOCK, then fstat), and
 * only as a regular file.
 */
async function openMember(path: string, what: string, subject: string): Promise<fsp.FileHandle> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new StoreError('not-found', `${what} is missing`, subject);
    if (code === 'ELOOP') throw new StoreError('invalid', `${what} is not a regular file (a symlink)`, subject);
    throw e;
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new StoreError('invalid', `${what} is not a regular file`, subject);
  }
  return fh;
}

/** A JSON member of a layout, whole (at most MetadataLimit bytes). */
async function readMember(path: string, what: string, subject: string): Promise<Buffer> {
  const fh = await openMember(path, what, subject);
  try {
    const { size } = await fh.stat();
    if (size > MetadataLimit) throw new StoreError('invalid', `${what} is larger than ${MetadataLimit} bytes`, subject);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** Blobs of an OCI layout directory, verified as they are read; only regular files are read. */
export class LayoutBlobs implements BlobSource {
  constructor(readonly dir: string) {}
  path(d: Digest): string {
    return join(this.dir, 'blobs', 'sha256', hexOf(checkDigest(d)));
  }
  private what(d: Digest): string {
    return `blob ${d} in layout ${this.dir}`;
  }
  async read(d: Digest): Promise<Buffer> {
    const buf = await readMember(this.path(d), this.what(d), d);
    if (`sha256:${createHash('sha256').update(buf).digest('hex')}` !== d)
      throw new StoreError('corrupt', `blob ${d} in ${this.dir} is corrupt`, d);
    return buf;
  }
  open(d: Digest): Readable {
    const out = new PassThrough();
    const hash = createHash('sha256');
    openMember(this.path(d), this.what(d), d).then(
      (fh) => {
        const rs = fh.createReadStream();
        rs.on('data', (c) => hash.update(c));
        rs.on('error', (e) => out.destroy(e));
        rs.on('end', () => {
          if (`sha256:${hash.digest('hex')}` !== d)
            out.destroy(new StoreError('corrupt', `blob ${d} in ${this.dir} is corrupt`, d));
          else out.end();
        });
        out.on('close', () => rs.destroy());
        rs.pipe(out, { end: false });
      },
      (e: Error) => out.destroy(e),
    );
    return out;
  }
}

export interface LayoutEntry {
  /** Full reference from io.containerd.image.name, or the ref.name annotation as written. */
  name?: string;
  refName?: string;
  descriptor: Descriptor;
  image: Image;
}

/** Read every image named in dir/index.json (indexes resolve to `platform`, default the host's). */
export async function read(
  dir: string,
  platform: Platform = hostPlatform(),
): Promise<{ blobs: LayoutBlobs; images: LayoutEntry[] }> {
  const blobs = new LayoutBlobs(dir);
  const index = await readIndex(dir);
  const images: LayoutEntry[] = [];
  for (const desc of index.manifests ?? []) {
    checkDigest(desc.digest);
    const image = await readImage(blobs, desc, platform);
    const refName = desc.annotations?.[RefNameAnnotation];
    images.push({ name: desc.annotations?.[ContainerdNameAnnotation] ?? refName, refName, descriptor: desc, image });
  }
  return { blobs, images };
}

/** A layout's index.json, read as every member of a layout from anywhere (no symlink, bounded). */
export async function readIndex(dir: string): Promise<OciIndex> {
  try {
    const text = await readMember(join(dir, 'index.json'), `${join(dir, 'index.json')}`, dir);
    const index = JSON.parse(text.toString('utf8')) as OciIndex;
    if (!index || !Array.isArray(index.manifests)) throw new Error('index.json has no manifests list');
    return index;
  } catch (e) {
    throw new StoreError('invalid', `${dir} is not an OCI layout: ${(e as Error).message}`, dir);
  }
}

/**
 * Puts these store blobs into the layout at dir (hardlinked or copied as write() does) and points the
 * index.json entry named refName at desc, replacing the entry of that name: how a build cache is
 * exported to a directory (--cache-to type=local), each export a new entry over the blobs of all.
 */
export async function writeEntry(
  store: Store,
  dir: string,
  blobs: Digest[],
  desc: Descriptor,
  refName: string,
): Promise<void> {
  const blobDir = join(dir, 'blobs', 'sha256');
  await fsp.mkdir(blobDir, { recursive: true });
  for (const d of blobs) await copyBlob(store, d, join(blobDir, hexOf(d)));
  await writeFileAtomic(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  let index: OciIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
  if (await exists(join(dir, 'index.json'))) index = await readIndex(dir);
  index.manifests = index.manifests.filter((m) => m.annotations?.[RefNameAnnotation] !== refName);
  index.manifests.push({ ...desc, annotations: { ...desc.annotations, [RefNameAnnotation]: refName } });
  await writeFileAtomic(join(dir, 'index.json'), JSON.stringify(index));
}
