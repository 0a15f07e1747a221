export * from './types.js';
export * from './reference.js';
export { Store, OciLayoutVersion } from './store.js';
export { FileBlobStore } from './blobs.js';
export { Tags, normalizeRef, RefNameAnnotation, ContainerdNameAnnotation, type TagEntry, type OciIndex } from './tags.js';
export { CacheIndex } from './cache.js';
export { Images, readImage, manifestDescriptor, layerMediaType, hostPlatform, type BlobSource, type WriteImageOptions, type ImageSummary } from './images.js';
export { LockManager, type LockOptions, type Release } from './lock.js';
export { type PruneOptions, type PruneReport } from './prune.js';
