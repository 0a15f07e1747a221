// The registry adapter: pull/push images and the build cache over the OCI distribution API.
export { RegistryClient, type ClientOptions, type ClientStats } from './client.js';
export { RegistryError, type RegistryErrorCode } from './errors.js';
export {
  DockerConfigCredentials,
  StaticCredentials,
  noCredentials,
  dockerConfigPath,
  storeCredentials,
  runCredentialHelper,
  type Credential,
  type CredentialSource,
  type DockerConfigFile,
} from './credentials.js';
export { login, logout } from './login.js';
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
export { pushCache, pullCache, cacheManifest, CacheMediaType, type CacheArtifact } from './artifact.js';
export {
  headManifest,
  parsePlatform,
  choosePlatform,
  acceptManifests,
  maxManifestSize,
  type Platform,
  type Index,
  type FetchedManifest,
} from './manifest.js';
export type { TransferStats } from './blob.js';
export { isInsecureHost } from './transport.js';
