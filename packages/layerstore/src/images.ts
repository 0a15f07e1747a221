// Images in the store: a manifest blob, a config blob and layer blobs. Tags (tags.ts) name manifests.
import { familiarName, parseReference, formatReference } from './reference.js';
import {
  MediaType,
  StoreError,
  type BlobStore,
  type Descriptor,
  type Digest,
  type Image,
  type ImageConfig,
  type Layer,
  type Manifest,
} from './types.js';
import { isDigest } from './fsutil.js';
import type { Platform } from './platform.js';
import { layerMediaType, manifestDescriptor, readImage } from './image-read.js';
import { verifyImage, type ImageDamage } from './image-verify.js';

export type { ImageDamage };
import type { Tags } from './tags.js';

export interface WriteImageOptions {
  config: ImageConfig;
  layers: Layer[];
  /** Media types of manifest, config and layers (default oci). */
  format?: 'oci' | 'docker';
  /** Manifest annotations. */
  annotations?: Record<string, string>;
}

/** One row of `tsbuild images`. */
export interface ImageSummary {
  /** Fully qualified reference: docker.io/library/app:1. */
  reference: string;
  /** The repository as a person writes it: app, localhost:5000/app. */
  repository: string;
  tag: string;
  /** The image id as docker shows it: the config digest. */
  id: Digest;
  manifestDigest: Digest;
  /** When the tag names an index (a multi-platform image): its digest; the row shows one platform's image. */
  indexDigest?: Digest;
  created?: string;
  /** Bytes of manifest + config + layer blobs as stored (built layers uncompressed, pulled ones compressed). */
  size: number;
  /** Set when the image cannot be used: blobs it needs that are missing, and what else is wrong. */
  broken?: ImageDamage;
}

export class Images {
  constructor(
    private readonly blobs: BlobStore,
    private readonly tags: Tags,
  ) {}

  /** Write config and manifest blobs for layers already in the store. */
  async write(opts: WriteImageOptions): Promise<Image> {
    const format = opts.format ?? 'oci';
    const diffIDs = opts.layers.map((l) => l.diffID);
    const given = opts.config.rootfs?.diff_ids;
    if (given && (given.length !== diffIDs.length || given.some((d, i) => d !== diffIDs[i]))) {
      throw new StoreError(
        'invalid',
        `config rootfs.diff_ids (${given.length}) do not match the layers' diffIDs (${diffIDs.length})`,
      );
    }
    for (const l of opts.layers) {
      // Touch before checking: a concurrent prune then sees the layer as fresh (protocol in prune.ts).
      const touch = (this.blobs as { touch?: (d: Digest) => Promise<boolean> }).touch;
      if (touch) await touch.call(this.blobs, l.digest);
      const size = await this.blobs.size(l.digest);
      if (size === undefined) throw new StoreError('not-found', `layer blob ${l.digest} is not in the store`, l.digest);
      if (size !== l.size)
        throw new StoreError('invalid', `layer ${l.digest} is ${size} bytes in the store, not ${l.size}`, l.digest);
    }
    const config: ImageConfig = { ...opts.config, rootfs: { type: 'layers', diff_ids: diffIDs } };
    const configBlob = await this.blobs.put(JSON.stringify(config));
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: format === 'docker' ? MediaType.DockerManifest : MediaType.OciManifest,
      config: {
        mediaType: format === 'docker' ? MediaType.DockerConfig : MediaType.OciConfig,
        digest: configBlob.digest,
        size: configBlob.size,
      },
      layers: opts.layers.map((l) => ({
        mediaType: layerMediaType(l.mediaType, format),
        digest: l.digest,
        size: l.size,
      })),
      ...(opts.annotations && Object.keys(opts.annotations).length ? { annotations: opts.annotations } : {}),
    };
    const manifestBlob = await this.blobs.put(JSON.stringify(manifest));
    const layers = opts.layers.map((l, i) => ({ ...l, mediaType: manifest.layers[i].mediaType }));
    return { manifestDigest: manifestBlob.digest, manifest, configDigest: configBlob.digest, config, layers };
  }

  /**
   * Walk everything a manifest or index descriptor needs (manifests, configs, layers) and say what
   * is missing or wrong: sizes against descriptors, JSON, diff_ids against layers. With a lease, each
   * blob is leased before it is looked at (BlobStore.has), so what was found stays. Blob contents
   * were verified when they were committed; `tsbuild check` re-hashes them.
   */
  verify(desc: Descriptor): Promise<ImageDamage> {
    return verifyImage(this.blobs, desc);
  }

  /**
   * Point ref at desc, but only once everything desc needs is in the store: a tag never names an
   * image with a missing or damaged blob (and with a lease, nothing it names can be pruned meanwhile).
   */
  async tagDescriptor(ref: string, desc: Descriptor): Promise<Descriptor> {
    const damage = await this.verify(desc);
    if (damage.missing.length || damage.problems.length) {
      const what = [...damage.missing.map((d) => `blob ${d} is missing`), ...damage.problems].join('; ');
      throw new StoreError(damage.missing.length ? 'not-found' : 'invalid', `not tagging ${ref}: ${what}`, desc.digest);
    }
    return this.tags.set(ref, desc);
  }

  /** The manifest descriptor to tag an image with. */
  async descriptor(image: Image): Promise<Descriptor> {
    const size = await this.blobs.size(image.manifestDigest);
    if (size === undefined)
      throw new StoreError('not-found', `manifest ${image.manifestDigest} is not in the store`, image.manifestDigest);
    return manifestDescriptor(image, size);
  }

  /** Tag an image (tagDescriptor(ref, await descriptor(image))). */
  async tag(ref: string, image: Image): Promise<Descriptor> {
    return this.tagDescriptor(ref, await this.descriptor(image));
  }

  /**
   * Find an image the way docker does: by reference (app:1, normalised), by reference@digest, by
   * manifest digest, or by image id (config digest) or a unique prefix of it (`sha256:abc`, `abc123`).
   * A reference to an index gives the image for `platform` (not-found when that platform was never
   * pulled), or without it the host's if it is there, else another platform's (readImage).
   */
  async get(refOrDigest: string, platform?: Platform): Promise<Image | undefined> {
    const image = await this.find(refOrDigest, platform);
    if (image) await this.requireWhole(refOrDigest, image);
    return image;
  }

  /**
   * An image about to be used (run, push, save, a base to build on) must have all its blobs; with a
   * lease they are leased here, before they are checked, so they stay for as long as it is used.
   */
  private async requireWhole(ref: string, image: Image): Promise<void> {
    const missing: Digest[] = [];
    for (const d of [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)]) {
      if (!(await this.blobs.has(d))) missing.push(d);
    }
    if (missing.length) {
      const blobs = missing.map((d) => `blob ${d}`).join(', ');
      const why = `image ${ref} is broken: ${blobs} missing from the store; see 'tsbuild check'`;
      throw new StoreError('not-found', why, missing[0]);
    }
  }

  private async find(refOrDigest: string, platform?: Platform): Promise<Image | undefined> {
    const s = refOrDigest.trim();
    if (isDigest(s)) {
      const direct = await this.byManifestDigest(s, platform);
      if (direct) return direct;
      return this.byIdPrefix(s.slice(7));
    }
    let parsed: ReturnType<typeof parseReference> | undefined;
    try {
      parsed = parseReference(s);
    } catch {
      /* not a reference: maybe an id prefix */
    }
    if (parsed) {
      if (parsed.digest && isDigest(parsed.digest)) {
        const img = await this.byManifestDigest(parsed.digest, platform);
        if (img) return img;
      } else {
        const desc = await this.tags.get(formatReference(parsed));
        if (desc) return readImage(this.blobs, desc, platform);
      }
    }
    const m = /^(?:sha256:)?([a-f0-9]{4,64})$/.exec(s);
    if (m) return this.byIdPrefix(m[1]);
    return undefined;
  }

  private async byManifestDigest(d: Digest, platform?: Platform): Promise<Image | undefined> {
    if (!(await this.blobs.has(d))) return undefined;
    let parsed: { mediaType?: string; manifests?: unknown; config?: { digest?: unknown }; layers?: unknown };
    try {
      parsed = await this.blobs.readJSON(d);
    } catch (e) {
      if (e instanceof StoreError && e.code === 'invalid') return undefined; // a layer, not a manifest
      throw e;
    }
    if (Array.isArray(parsed.manifests))
      return readImage(this.blobs, { mediaType: parsed.mediaType ?? MediaType.OciIndex, digest: d, size: 0 }, platform);
    if (Array.isArray(parsed.layers) && isDigest(parsed.config?.digest))
      return readImage(this.blobs, { mediaType: parsed.mediaType ?? MediaType.OciManifest, digest: d, size: 0 });
    return undefined;
  }

  private async byIdPrefix(hexPrefix: string): Promise<Image | undefined> {
    const found = new Map<Digest, Image>();
    for (const t of await this.tags.list()) {
      let img: Image;
      try {
        img = await readImage(this.blobs, t.descriptor);
      } catch {
        continue;
      }
      // The image id is the config's digest (docker's): a prefix of a manifest's digest names nothing.
      if (img.configDigest.slice(7).startsWith(hexPrefix)) found.set(img.configDigest, img);
    }
    if (found.size > 1)
      throw new StoreError(
        'invalid',
        `image id prefix "${hexPrefix}" is ambiguous: it matches ${[...found.keys()].join(', ')}`,
        hexPrefix,
      );
    return found.values().next().value;
  }

  /**
   * Every tag with the image behind it. A tag whose image has missing or damaged blobs is listed
   * too, with `broken` saying what (and `image` undefined if even its manifest cannot be read).
   */
  async list(): Promise<(ImageSummary & { image?: Image })[]> {
    const out: (ImageSummary & { image?: Image })[] = [];
    for (const t of await this.tags.list()) {
      const ref = parseReference(t.name);
      const repository = familiarName({ ...ref, tag: undefined, digest: undefined });
      const damage = await this.verify(t.descriptor);
      const broken = damage.missing.length || damage.problems.length ? damage : undefined;
      let image: Image;
      try {
        image = await readImage(this.blobs, t.descriptor);
      } catch (e) {
        if (!broken) damage.problems.push((e as Error).message);
        const digest = t.descriptor.digest;
        const tag = ref.tag ?? '<none>';
        out.push({ reference: t.name, repository, tag, id: digest, manifestDigest: digest, size: 0, broken: damage });
        continue;
      }
      const manifestSize = (await this.blobs.size(image.manifestDigest)) ?? 0;
      const size = manifestSize + image.manifest.config.size + image.layers.reduce((n, l) => n + l.size, 0);
      out.push({
        reference: t.name,
        repository,
        tag: ref.tag ?? '<none>',
        id: image.configDigest,
        manifestDigest: image.manifestDigest,
        ...(t.descriptor.digest !== image.manifestDigest ? { indexDigest: t.descriptor.digest } : {}),
        created: image.config.created,
        size,
        image,
        ...(broken ? { broken } : {}),
      });
    }
    return out;
  }
}
