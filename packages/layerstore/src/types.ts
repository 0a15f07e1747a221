// The public vocabulary of the store. Adapters (layout, archive, remote) speak
// in these terms; nothing outside this package sees file paths of blobs except
// snapshots, which the sandbox mounts.
import type { Readable } from 'node:stream';
import type { Code, Coded } from '@tsbuild/errdefs';

export type Digest = `sha256:${string}`;

export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

/** OCI image config, with Docker's extra fields kept (Healthcheck, Shell, OnBuild, StopSignal...). */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: History[];
}

export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  OnBuild?: string[] | null;
  Shell?: string[];
  Healthcheck?: {
    Test?: string[];
    Interval?: number;
    Timeout?: number;
    StartPeriod?: number;
    StartInterval?: number;
    Retries?: number;
  };
  ArgsEscaped?: boolean;
}

export interface History {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** A layer as stored: its compressed blob and the digest of its uncompressed tar. */
export interface Layer {
  digest: Digest;
  diffID: Digest;
  size: number;
  mediaType: string;
}

/** An image as found in the store (or any adapter). */
export interface Image {
  manifestDigest: Digest;
  manifest: Manifest;
  configDigest: Digest;
  config: ImageConfig;
  layers: Layer[];
}

export type Compression = 'gzip' | 'zstd' | 'none';

export interface LayerOptions {
  compression?: Compression;
  /** Clamp every mtime to this (seconds since the epoch), as SOURCE_DATE_EPOCH asks. */
  sourceDateEpoch?: number;
}

/**
 * One entry of a layer, for layers made from something other than a directory (e.g. COPY straight from the context).
 */
export interface Entry {
  /** Relative path inside the layer, '/'-separated, no leading '/' or './'. */
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'fifo' | 'char' | 'block' | 'whiteout' | 'opaque';
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer>;
  /** Content of a regular file. */
  open?: () => Readable;
}

/** An unpacked layer on disk (overlay lowerdir format: whiteouts as 0/0 char devices, opaque dirs by xattr). */
export interface Snapshot {
  chainID: Digest;
  path: string;
}

/** A record of the build cache: an opaque value and the blobs it keeps alive. */
export interface CacheRecord {
  value: unknown;
  blobs: Digest[];
  /** ChainIDs of snapshots the record keeps (the layer it names, stacked on those under it). */
  snapshots?: Digest[];
}

export class StoreError extends Error implements Coded {
  constructor(
    public readonly code: 'corrupt' | 'not-found' | 'hostile-layer' | 'invalid' | 'io',
    message: string,
    public readonly subject?: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
  /** 'invalid' here is bad data the store read (a blob, an archive), not a bad request: `failed`. */
  get errdef(): Code {
    return this.code === 'not-found' ? 'not-found' : this.code === 'io' ? 'unavailable' : 'failed';
  }
}

/**
 * A blob being written. Bytes go to a temp file while being hashed; nothing is visible
 * under blobs/ until commit() has checked size and digest, fsynced and renamed. A write's
 * callback is called once the ingest is done with that chunk (hashed and written): the
 * caller may then reuse its memory (writeLayer does).
 */
export interface Ingest extends NodeJS.WritableStream {
  /**
   * Verify against what the caller expects (if given), fsync, rename into place. Idempotent if the blob already exists.
   */
  commit(expected?: { digest?: Digest; size?: number }): Promise<{ digest: Digest; size: number }>;
  /**
   * End the writes and tell the digest and size of what was written, before commit() has fsynced and
   * renamed it (a streamed push sends the digest while the store still commits the blob).
   */
  digest?(): Promise<{ digest: Digest; size: number }>;
  /** Drop the temp file. */
  abort(): Promise<void>;
  /**
   * Hash on a worker thread from now on (before the first write): for a large blob whose writer keeps the main
   * thread busy. A chunk handed to write() is then read until the write's callback, as the file write reads it.
   */
  hashOnThread?(): void;
}

export interface BlobStore {
  has(digest: Digest): Promise<boolean>;
  /** Size on disk, or undefined if absent. */
  size(digest: Digest): Promise<number | undefined>;
  /** A stream of the blob that fails with StoreError('corrupt') if the bytes do not match the digest. */
  open(digest: Digest): Readable;
  ingest(): Ingest;
  /** Store bytes held in memory (configs, manifests). */
  put(bytes: Buffer | string): Promise<{ digest: Digest; size: number }>;
  /** Read a small blob whole and verify it. */
  read(digest: Digest): Promise<Buffer>;
  readJSON<T>(digest: Digest): Promise<T>;
}
