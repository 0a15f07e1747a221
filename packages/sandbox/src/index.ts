// @tsbuild/sandbox: runs one process in namespaces over an overlay stack, with mounts and limits,
// and reports how it ended. Knows nothing of images.
export * from './types.js';
export { run } from './run.js';
export { SandboxError } from './errors.js';
export { exec, cgroupProcsOf } from './exec.js';
export { freezeSandbox, killSandbox, type Thaw } from './freeze.js';
export { startNetwork, slirpPath, type LauncherStdio, type NetworkOptions } from './network.js';
export { addressPlan, dnsChoice, privateResolvConf, type DnsChoice } from './addresses.js';
export { launcherPath } from './launcher.js';
export { checkHost, type HostCheck } from './check.js';
export { cleanupStale, defaultStateDir } from './state.js';
export { resolveInRoot } from './initlayer.js';
export { userNamespace, rootless, hostUid, toHost, warnOnce, type UserNamespace, type IdMapping } from './userns.js';
export { sandboxInfo, type SandboxInfo } from './info.js';
// A root filesystem read from its overlay stack without mounting it, and the process's identity in it.
export { RootView, LayerMissingError, isWhiteout, type ViewEntry, type OpaqueCheck } from './rootfs/rootview.js';
export { flattenInto } from './rootfs/flatten.js';
export { resolveUser, resolveChown, asContainerProcess, withHome, UserError, type Identity } from './rootfs/users.js';
