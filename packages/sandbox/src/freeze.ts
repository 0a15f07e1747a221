// Freezing a running sandbox: every process in its cgroup stops where it is until thawed, so that
// its files can be read without the sandbox changing them mid-walk. `tsbuild commit` needs this:
// a walk of a live upperdir by path can be led onto the host by a process that swaps a directory
// for a symlink between two steps of the walk (renameat2 RENAME_EXCHANGE).
import { setTimeout as sleep } from 'node:timers/promises';
import { SandboxError } from './errors.js';
import { readText, write } from './cgroup/fsutil.js';
import { cgroupDriver } from './cgroup/index.js';
import { rootless } from './userns.js';

/** Undoes a freeze; safe to call more than once. */
export type Thaw = () => void;

interface Freezer {
  dir: string;
  file: string;
  frozen: () => boolean;
  freeze: string;
  thaw: string;
}

function freezerOf(pid: number): Freezer {
  const text = readText(`/proc/${pid}/cgroup`);
  if (text === undefined) throw new SandboxError(`no process ${pid}: the sandbox is not running`);
  const driver = cgroupDriver();
  if (driver?.version === 2) {
    const path = text.match(/^0::(\/tsbuild\/.+)$/m)?.[1];
    if (path) {
      const dir = `${driver.root}${path}`;
      return {
        dir,
        file: `${dir}/cgroup.freeze`,
        freeze: '1',
        thaw: '0',
        frozen: () => /^frozen 1$/m.test(readText(`${dir}/cgroup.events`) ?? ''),
      };
    }
  } else {
    const path = text.match(/^\d+:(?:[^:]*,)?freezer(?:,[^:]*)?:(\/tsbuild\/.+)$/m)?.[1];
    if (path && driver) {
      const dir = `${driver.root}/freezer${path}`;
      return {
        dir,
        file: `${dir}/freezer.state`,
        freeze: 'FROZEN',
        thaw: 'THAWED',
        frozen: () => readText(`${dir}/freezer.state`)?.trim() === 'FROZEN',
      };
    }
  }
  if (rootless())
    throw new SandboxError('rootless: no cgroup is delegated here, so a running sandbox cannot be frozen');
  throw new SandboxError(`the sandbox of pid ${pid} has no freezer cgroup (it must be started with freezable: true)`);
}

/**
 * Freezes the sandbox whose init has host pid `pid` and resolves once every process in it is
 * frozen (the kernel freezes asynchronously: v1 passes through FREEZING, v2 reports in
 * cgroup.events). Rejects, thawed again, if that does not happen within `timeoutMs`.
 */
export async function freezeSandbox(pid: number, timeoutMs = 10_000): Promise<Thaw> {
  const f = freezerOf(pid);
  let thawed = false;
  const thaw: Thaw = () => {
    if (thawed) return;
    thawed = true;
    process.off('exit', thaw);
    try {
      write(f.file, f.thaw);
    } catch {
      /* the cgroup is gone with the sandbox: nothing is frozen */
    }
  };
  // A caller that exits on a second Ctrl-C (process.exit) still thaws; only SIGKILL leaves it frozen.
  process.once('exit', thaw);
  write(f.file, f.freeze);
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; !f.frozen(); i++) {
    if (Date.now() > deadline) {
      thaw();
      throw new SandboxError(`the sandbox of pid ${pid} did not freeze within ${timeoutMs} ms`);
    }
    // v1 retries a task that was not freezable yet only when the state is written again.
    if (f.freeze === 'FROZEN') write(f.file, f.freeze);
    await sleep(i < 20 ? 1 : 10);
  }
  return thaw;
}

/**
 * SIGKILLs every process of the sandbox whose init has host pid `pid`, then thaws it. A frozen
 * process acts on SIGKILL only once thawed (cgroup v1), and a commit killed with SIGKILL leaves its
 * container frozen with nobody to thaw it: a plain kill of init would leave it there for good.
 * Killed before the thaw, so that none of them runs its own code again (a thawed task with SIGKILL
 * pending exits on its way back to user space), and none can fork in between (they are frozen).
 * The launcher (pid's parent) is in the cgroup too, but spared: it is outside the sandbox, and once
 * thawed it reports how PID 1 ended (SIGKILL: 137, as `docker stop` and `docker kill` do).
 */
export function killSandbox(pid: number): void {
  let f: Freezer | undefined;
  try {
    f = freezerOf(pid);
  } catch {
    /* no freezer cgroup: it cannot be frozen either */
  }
  const launcher = Number(readText(`/proc/${pid}/status`)?.match(/^PPid:\s*(\d+)$/m)?.[1] ?? 0);
  const procs = f ? (readText(`${f.dir}/cgroup.procs`) ?? '').split('\n').filter(Boolean).map(Number) : [];
  for (const p of [pid, ...procs.filter((p) => p !== launcher)]) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (f)
    try {
      write(f.file, f.thaw);
    } catch {
      /* the cgroup went with its processes */
    }
}
