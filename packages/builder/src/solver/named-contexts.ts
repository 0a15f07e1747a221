// `--build-context NAME=VALUE`: what `FROM NAME`, `COPY --from=NAME` and `RUN --mount=from=NAME` read
// instead of the image NAME. Each becomes an image in the store, so the solver needs nothing new:
//   docker-image://REF        the image REF (from the store, else pulled), as any base image;
//   oci-layout://PATH[:TAG]   the image TAG (default latest; or @sha256:...) of an OCI layout, its blobs
//                             copied into the store, each verified against its digest;
//   a directory               its files as one layer over scratch: an inner build of `COPY . /` from
//                             it, so the directory is read as a build context is (beneath its fd, with
//                             its .dockerignore), and cached as one.
import { pipeline } from 'node:stream/promises';
import {
  formatReference,
  layout,
  parseReference,
  validate,
  type Digest,
  type Image,
  type Platform,
  type Store,
} from '@tsbuild/layerstore';
import { join } from 'node:path';
import { BuildError } from '../errors.js';

export type NamedContext =
  | { name: string; type: 'image'; ref: string }
  | { name: string; type: 'oci-layout'; dir: string; tag?: string; digest?: Digest }
  | { name: string; type: 'dir'; dir: string };

/** The named context a FROM/--from reference means: as written, or the same image name normalized. */
export function contextFor(contexts: NamedContext[], ref: string): NamedContext | undefined {
  const exact = contexts.find((c) => c.name === ref);
  if (exact) return exact;
  const norm = normal(ref);
  return norm === undefined ? undefined : contexts.find((c) => normal(c.name) === norm);
}

function normal(ref: string): string | undefined {
  try {
    return formatReference(parseReference(ref));
  } catch {
    return undefined;
  }
}

/** The image of an OCI layout named by an `oci-layout://` context, copied into the store. */
export async function importLayout(
  store: Store,
  c: Extract<NamedContext, { type: 'oci-layout' }>,
  platform?: Platform,
): Promise<Image> {
  const what = `--build-context ${c.name}=oci-layout://${c.dir}`;
  let read: Awaited<ReturnType<typeof layout.read>>;
  try {
    read = await layout.read(c.dir, platform);
  } catch (e) {
    throw new BuildError(`${what}: ${(e as Error).message}`, 'invalid');
  }
  const tag = c.tag ?? 'latest';
  const entry = c.digest
    ? read.images.find((i) => i.descriptor.digest === c.digest || i.image.manifestDigest === c.digest)
    : (read.images.find((i) => i.refName === tag || i.refName?.endsWith(`:${tag}`)) ??
      (c.tag === undefined && read.images.length === 1 ? read.images[0] : undefined));
  if (!entry)
    throw new BuildError(
      `${what}: no image ${c.digest ?? `tagged "${tag}"`} in its index.json (${read.images.length} listed)`,
      'not-found',
    );
  const image = entry.image;
  // Every blob through the store's ingest, checked against its digest and size as it is written.
  const sizes = new Map<Digest, number | undefined>([
    [image.manifestDigest, undefined],
    [image.configDigest, image.manifest.config.size],
    ...image.layers.map((l) => [l.digest, l.size] as [Digest, number]),
  ]);
  for (const [digest, size] of sizes) {
    if ((await store.blobs.size(digest)) !== undefined) continue;
    const ingest = store.blobs.ingest();
    try {
      await pipeline(read.blobs.open(digest), ingest as unknown as NodeJS.WritableStream);
      await ingest.commit(size === undefined ? { digest } : { digest, size });
    } catch (e) {
      await ingest.abort();
      throw new BuildError(`${what}: blob ${digest}: ${(e as Error).message}`, 'invalid');
    }
  }
  const stored = await store.images.get(image.manifestDigest);
  if (!stored) throw new BuildError(`${what}: manifest ${image.manifestDigest} did not reach the store`);
  try {
    await validate(stored, store.blobs);
  } catch (e) {
    throw new BuildError(`${what}: ${(e as Error).message}`, 'invalid');
  }
  return stored;
}

/**
 * A directory given as a named context: its files as one layer over scratch, made by an inner build
 * of `COPY . /` with the directory as its context (read beneath its fd, .dockerignore applied, cached).
 * These are that build's own fields; the caller adds the store, reporter and the rest of its own.
 */
export function directoryBuild(dir: string) {
  return {
    contextDir: dir,
    dockerfilePath: join(dir, '(--build-context)'),
    dockerfileIsFile: false,
    // The stage name labels the inner build's progress lines: [context 2/2] COPY . /
    dockerfileText: 'FROM scratch AS context\nCOPY . /\n',
    tags: [],
    buildArgs: {},
    network: 'none' as const,
    secrets: new Map<string, { file?: string; env?: string }>(),
  };
}
