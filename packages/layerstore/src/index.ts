export * from './types.js';
export { DEFAULT_PATH, setEnv } from './imageconfig.js';
export * from './reference.js';
export { Store, OciLayoutVersion } from './store.js';
export { FileBlobStore } from './blobs.js';
export {
  Tags,
  normalizeRef,
  RefNameAnnotation,
  ContainerdNameAnnotation,
  type TagEntry,
  type OciIndex,
} from './tags.js';
export { CacheIndex } from './cache.js';
export { Images, readImage, manifestDescriptor, layerMediaType, hostPlatform } from './images.js';
export type { BlobSource, WriteImageOptions, ImageSummary, ImageDamage } from './images.js';
export { LockManager, type LockOptions, type Release } from './lock.js';
export { type PruneOptions, type PruneReport } from './prune.js';
export { Lease, Leases, LeaseHolder, SweepLock, ownerAlive } from './leases.js';
export type { LeaseInfo, LeaseKind, LeaseOwner } from './leases.js';
export { check, type CheckOptions, type CheckReport } from './check.js';
export * as remote from './remote/index.js';
// TLS trust for any client (registry, ADD https://…), apart from `remote` so that using it loads nothing else.
export { trustDeferredExtraCaCerts, clientSecureContext, certificateProblem } from './remote/tls.js';
export * from './layer/index.js';
export * from './snapshot/index.js';
export * as layout from './layout/index.js';
export { getXattr, readXattrs, setXattr, removeTreeBeneath, overlayXattrPrefix } from './sys/index.js';
export * as archive from './archive/index.js';
export { validate, validateProblems, type ValidateSource } from './validate.js';
