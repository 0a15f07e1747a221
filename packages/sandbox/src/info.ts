// What this host gives the sandbox, for `tsbuild info`: rootless or not, the id mappings, how the
// root is mounted, the network, which limits can be applied. Answers from what is there (the
// process's own maps, /proc, /sys/fs/cgroup, the helpers on PATH), never from a guess.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { cgroupDriver, delegationPlan, limitFlags } from './cgroup/index.js';
import { slirpPath } from './network.js';
import { defaultStateDir } from './state.js';
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
  limits: {
    cgroup: 'v1' | 'v2' | 'none';
    available: string[];
    /** Rootless: the cgroup v2 subtree delegated to the user and its controllers. */
    delegated?: { dir: string; controllers: string[] };
    note?: string;
  };
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
  const flagsOf = (cs: string[]) => cs.filter((c) => limitFlags[c]).map((c) => limitFlags[c]);
  if (driver?.delegation) {
    const { dir, controllers } = driver.delegation;
    const missing = Object.keys(limitFlags).filter((c) => !controllers.includes(c));
    limits = {
      cgroup: 'v2',
      available: flagsOf(controllers),
      delegated: { dir, controllers },
      note:
        `rootless: cgroup ${dir} is delegated to you (controllers: ${controllers.join(' ') || 'none'}); ` +
        'each run gets a child cgroup of it' +
        (missing.length ? `; ${flagsOf(missing).join(', ')} cannot be applied (not delegated)` : ''),
    };
  } else if (driver) {
    const controllers =
      driver.version === 2
        ? readFileSync(`${driver.root}/cgroup.controllers`, 'utf8').trim().split(/\s+/)
        : ['cpu', 'memory', 'pids'].filter((c) => existsSync(`${driver.root}/${c}/cgroup.procs`));
    limits = { cgroup: driver.version === 2 ? 'v2' : 'v1', available: flagsOf(controllers) };
  } else {
    const plan = delegationPlan();
    limits = {
      cgroup: 'none',
      available: [],
      note: ns
        ? `rootless: no cgroup is delegated to you here (${plan.delegated ? 'unused' : plan.reason}); ` +
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
