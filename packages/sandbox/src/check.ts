// Can this host run sandboxes at all? Answers with a message a person can act on.
import { readFileSync, existsSync } from 'node:fs';
import { launcherExists, launcherPath } from './launcher.js';
import { cgroupDriver } from './cgroup/index.js';

export interface HostCheck {
  ok: boolean;
  /** Why not, and what to do about it. */
  problems: string[];
  cgroupVersion?: 1 | 2;
}

export function checkHost(): HostCheck {
  const problems: string[] = [];
  if (process.platform !== 'linux') problems.push('the sandbox needs Linux (namespaces, overlayfs)');
  if (process.getuid?.() !== 0)
    problems.push('the sandbox needs root (mounting overlayfs and creating namespaces); run tsbuild as root');
  let fss = '';
  try {
    fss = readFileSync('/proc/filesystems', 'utf8');
  } catch {
    /* reported below */
  }
  if (!/\toverlay$/m.test(fss)) problems.push('overlayfs is not available: load it with `modprobe overlay`');
  for (const ns of ['mnt', 'pid', 'uts', 'ipc', 'net', 'cgroup'])
    if (!existsSync(`/proc/self/ns/${ns}`)) problems.push(`the kernel lacks ${ns} namespaces`);
  if (!launcherExists()) problems.push(`the launcher ${launcherPath()} is missing: run \`pnpm run build\` (needs gcc)`);
  const cg = cgroupDriver();
  if (!cg) problems.push('no usable cgroup filesystem at /sys/fs/cgroup: resource limits will not work');
  if (cg?.version === 1 && !existsSync(`${cg.root}/devices/devices.allow`)) {
    problems.push(
      `the cgroup v1 devices controller is not mounted at ${cg.root}/devices: runs are refused without ` +
        'the device allowlist (mount it, as systemd does)',
    );
  }
  return { ok: problems.length === 0, problems, cgroupVersion: cg?.version };
}
