// @tsbuild/containers: docker-style containers without a daemon (run, ps, start, stop, kill, rm,
// logs, exec, commit, volume) on top of the sandbox (processes) and layerstore (images, the
// snapshotter, leases). State lives in the store's containers/ and volumes/ directories.
export {
  ContainerError,
  findDoc,
  tryFindDoc,
  listDocs,
  listContainers,
  refresh,
  isRunning,
  containerLease,
  type ContainerDoc,
  type ContainerSpec,
  type MountSpec,
  type Status,
} from './state.js';
export { createContainer, createToRun, parseVolume, readEnvFile, type CreateOptions, type Created } from './create.js';
export { parseMount, type MountRequest } from './mount-flag.js';
export {
  runContainer,
  startDetached,
  networkAhead,
  discardNetwork,
  ContainerStartError,
  type RunIO,
  type StartOutcome,
} from './runner.js';
export { stopContainer, signalContainer, killContainer } from './signal.js';
export { removeContainer } from './remove.js';
export { execInContainer, execDetached, type DetachedExecOptions, type ExecOptions } from './exec.js';
export { commitContainer, containerOnly, type CommitContainerOptions } from './commit.js';
export { copyLogs, type LogOptions } from './logs.js';
export {
  ensureVolume,
  getVolume,
  listVolumes,
  removeVolume,
  pruneVolumes,
  volumesInUse,
  type VolumeInfo,
} from './volumes.js';
