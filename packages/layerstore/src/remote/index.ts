// The registry adapter: pull/push images and the build cache over the OCI distribution API.
// The client, transport, manifest and blob plumbing behind these stay inside the package.
export { RegistryError, type RegistryErrorCode } from './errors.js';
export {
  DockerConfigCredentials,
  StaticCredentials,
  noCredentials,
  type Credential,
  type CredentialSource,
} from './credentials.js';
export { login, logout, registryName } from './login.js';
export { checkInsecureRegistry, isInsecureRegistry } from './insecure.js';
export { BlobLocations } from './locations.js';
export {
  resolve,
  pull,
  fetchBlobs,
  type ResolveOptions,
  type Resolved,
  type PullOptions,
  type PullResult,
  type RemoteOptions,
} from './pull.js';
export { push, type PushOptions, type PushResult, type PushSource, type LayerCodec } from './push.js';
export { startUploads, type Uploads, type UploadEvent, type UploadsOptions } from './uploads.js';
export {
  pushCache,
  pullCache,
  putCacheArtifact,
  parseCacheConfig,
  CacheConfigLimit,
  CacheMediaType,
  InlineCacheKey,
  type CacheArtifact,
} from './artifact.js';
export { parsePlatform, type Platform } from './manifest.js';
export type { TransferStats } from './blob.js';
// TLS trust for any client (the registry, ADD https://…).
export { trustDeferredExtraCaCerts, clientSecureContext, certificateProblem } from './tls.js';
