// What writing and loading archives share: tar-stream, loaded lazily, and the blob paths inside an archive.
import { createRequire } from 'node:module';
import type * as TarStream from 'tar-stream';
import { hexOf } from '../fsutil.js';
import type { Digest } from '../types.js';

// tar-stream is loaded when an archive is read or written, not when the store opens.
let tarModule: typeof TarStream | undefined;
export const tarLib = (): typeof TarStream =>
  (tarModule ??= createRequire(import.meta.url)('tar-stream') as typeof TarStream);

export type ArchiveFormat = 'oci' | 'docker';

/** manifest.json of a docker archive. */
export interface DockerManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

export const blobPath = (d: Digest) => `blobs/sha256/${hexOf(d)}`;
