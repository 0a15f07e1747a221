// What this host gives the sandbox, for `tsbuild info`: rootless or not, the id mappings, how the
// root is mounted, the network, which limits can be applied. Answers from what is there (the
// process's own maps, /proc, /sys/fs/cgroup, the helpers on PATH), never from a guess.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { cgroupDriver } from './cgroup/index.js';
import { slirpPath } from './network.js';
import { defaultStateDir, writable } from './state.js';
import { tunAdvice, tunUsable, userNamespace, type IdMapping } from './userns.js';

export interface SandboxInfo {
  rootless: boolean;
  /** The host user who is root inside (rootless), else 0. */
  hostUid: number;
  hostGid: number;
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  /** 'host' (root, no user namespace), 'ranges' (subordinate ids mapped), 'single' (only the user's own). */
  idMapping: 'host' | 'ranges' | 'single';
  kernel: string;
  overlay: { mode: 'native' | 'native-userxattr' | 'unavailable'; note?: string };
  network: { default: 'private'; helper?: string; note?: string };
  limits: { cgroup: 'v1' | 'v2' | 'none'; available: string[]; note?: string };
  stateDir: string;
}

function kernelAtLeast(major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release());
  if (!m) return false;
  return Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) >= minor);
}

function hasOverlay(): boolean {
  try {
    return /\toverlay$/m.test(readFileSync('/proc/filesystems', 'utf8'));
  } catch {
    return false;
  }
}

export function sandboxInfo(): SandboxInfo {
  const ns = userNamespace();
  const identity = [{ inside: 0, outside: 0, count: 4294967295 }];
  const overlay: SandboxInfo['overlay'] = !hasOverlay()
    ? { mode: 'unavailable', note: 'overlayfs is not available: load it with `modprobe overlay`' }
    : !ns
      ? { mode: 'native' }
      : kernelAtLeast(5, 11)
        ? { mode: 'native-userxattr', note: 'overlayfs mounted inside the user namespace, with user.overlay.* xattrs' }
        : { mode: 'unavailable', note: 'overlayfs in a user namespace needs kernel >= 5.11' };

  const helper = slirpPath();
  let netNote: string | undefined;
  if (!helper) netNote = 'slirp4netns not found: only --network none or host work';
  else if (ns && !tunUsable()) netNote = tunAdvice;

  const driver = cgroupDriver();
  let limits: SandboxInfo['limits'];
  if (driver) {
    const controllers =
      driver.version === 2
        ? readFileSync(`${driver.root}/cgroup.controllers`, 'utf8').trim().split(/\s+/)
        : ['cpu', 'memory', 'pids'].filter((c) => existsSync(`${driver.root}/${c}/cgroup.procs`));
    const names: Record<string, string> = { cpu: '--cpus', memory: '--memory', pids: '--pids-limit' };
    limits = {
      cgroup: driver.version === 2 ? 'v2' : 'v1',
      available: controllers.filter((c) => names[c]).map((c) => names[c]),
    };
  } else {
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    limits = {
      cgroup: 'none',
      available: [],
      note: ns
        ? v2 && writable('/sys/fs/cgroup')
          ? 'rootless: a writable cgroup v2 tree is not used yet; runs have no limits'
          : `rootless: no cgroup delegated to this user here (${v2 ? 'cgroup v2' : 'cgroup v1/hybrid layout'}); ` +
            'runs have no limits (--cpus, --memory, --pids-limit are ignored with a warning)'
        : 'no cgroup filesystem at /sys/fs/cgroup: limits are refused',
    };
  }

  return {
    rootless: ns !== undefined,
    hostUid: ns?.hostUid ?? 0,
    hostGid: ns?.hostGid ?? 0,
    uidMap: ns?.uids ?? identity,
    gidMap: ns?.gids ?? identity,
    idMapping: !ns ? 'host' : ns.single ? 'single' : 'ranges',
    kernel: release(),
    overlay,
    network: { default: 'private', helper, note: netNote },
    limits,
    stateDir: defaultStateDir(),
  };
}
