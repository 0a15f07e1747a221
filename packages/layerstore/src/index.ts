// @tsbuild/layerstore: the core (Store, Image, Layer, Descriptor, Digest, MediaType, references, errors,
// leases) and the adapters (layout, archive, remote, validate). The layer codec is the `./layer` subpath;
// everything else (blob files, tags, cache index, tar/gzip, xattrs, locks' internals) stays inside.
export {
  MediaType,
  StoreError,
  type Digest,
  type Descriptor,
  type Manifest,
  type ImageConfig,
  type ContainerConfig,
  type History,
  type Image,
  type Layer,
  type Compression,
} from './types.js';
export { DEFAULT_PATH, setEnv } from './imageconfig.js';
export * from './reference.js';
export { isDigest } from './digest.js';
export { Store } from './store.js';
export type { LockOptions, Release } from './lock.js';
export type { PruneOptions, PruneReport } from './prune.js';
export { Lease, Leases } from './leases.js';
export type { LeaseInfo, LeaseKind, LeaseOwner } from './lease-file.js';
export { chainID, chainIDs } from './snapshot/index.js';
// The one snapshotter (RUN steps and containers): prepare(parent) → active, view, commit(active) → layer, remove.
export { Snapshotter, isOpaque } from './snapshot/index.js';
export type { ActiveSnapshot, SnapshotMounts, CommitOptions } from './snapshot/index.js';
// Rootless: which overlay xattr namespace this process's snapshots use (the beneath-fd operations,
// removeTreeBeneath among them, are @tsbuild/sys's).
export { overlayXattrPrefix, inUserNamespace } from '@tsbuild/sys';
export { hostPlatform, normalizePlatform, formatPlatform, platformMatches, type Platform } from './platform.js';
export { check, type CheckOptions, type CheckReport } from './check.js';
// Adapters.
export * as remote from './remote/index.js';
export * as layout from './layout/index.js';
export * as archive from './archive/index.js';
export { validate, validateProblems, type ValidateSource, type ValidateOptions } from './validate.js';
// Deferred compression: layers are stored uncompressed and compressed when an image leaves the store.
export {
  compressedImage,
  materialiseLayer,
  needsCompression,
  layerCodec,
  unpackedLayerSizes,
  type CompressOptions,
} from './compressed.js';
