// Freezing a running sandbox: every process in its cgroup stops where it is until thawed, so that
// its files can be read without the sandbox changing them mid-walk. `tsbuild commit` needs this:
// a walk of a live upperdir by path can be led onto the host by a process that swaps a directory
// for a symlink between two steps of the walk (renameat2 RENAME_EXCHANGE).
//
// Rootless without a delegated cgroup there is no freezer: every process of the sandbox is stopped
// with SIGSTOP instead (its pid namespace, and whatever descends from it), until none is left
// running. Not as invisible as a freezer (a parent inside sees its child stop), but nothing of the
// sandbox runs during the walk, which is what the walk needs.
import { readdirSync, readlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { processStart, processStat, type ProcessStat } from '@tsbuild/sys';
import { SandboxError } from './errors.js';
import { readText, write } from './cgroup/fsutil.js';
import { cgroupDriver } from './cgroup/index.js';
import { rootless, warnOnce } from './userns.js';

/** Undoes a freeze; safe to call more than once. */
export type Thaw = () => void;

export interface Freezer {
  /** The cgroup, or '' when signals stop the sandbox (signalFreezer). */
  dir: string;
  file: string;
  frozen: () => boolean;
  freeze: string;
  thaw: string;
  /** Thaws a freeze made without a cgroup. */
  resume?: () => void;
  /** Why the freeze has not completed yet, for the timeout's error (signalFreezer: who still runs). */
  pending?: () => string;
}

function cgroupFreezer(pid: number): Freezer | undefined {
  const text = readText(`/proc/${pid}/cgroup`);
  if (text === undefined) throw new SandboxError(`no process ${pid}: the sandbox is not running`);
  const driver = cgroupDriver();
  if (driver?.version === 2) {
    const path = text.match(/^0::(\/.+)$/m)?.[1];
    // The run cgroups are <root>/tsbuild/ID; root is a delegated subtree of the mount (rootless) or all of it.
    const dir = path === undefined ? undefined : `${driver.mount ?? driver.root}${path}`;
    if (dir?.startsWith(`${driver.root}/tsbuild/`)) {
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
  return undefined;
}

function freezerOf(pid: number): Freezer {
  const f = cgroupFreezer(pid);
  if (f) return f;
  throw new SandboxError(`the sandbox of pid ${pid} has no freezer cgroup (it must be started with freezable: true)`);
}

/** Parent pid, state letter and start time of every process this user may see. */
function processTable(): Map<number, ProcessStat> {
  const out = new Map<number, ProcessStat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = processStat(Number(name));
    if (s) out.set(Number(name), s);
  }
  return out;
}

function pidNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/**
 * The processes of the sandbox whose init is `pid`: those in its pid namespace (exec'd ones
 * included) and their descendants (a nested pid namespace's too). Without zombies, which cannot stop.
 */
function sandboxProcesses(pid: number, ns: string): Map<number, ProcessStat> {
  const table = processTable();
  const members = new Map<number, ProcessStat>();
  const others = new Set<number>();
  const isMember = (p: number, depth = 0): boolean => {
    if (members.has(p)) return true;
    const e = table.get(p);
    if (!e || others.has(p) || depth > 4096) return false;
    if (p === pid || pidNamespace(p) === ns || (e.ppid > 1 && isMember(e.ppid, depth + 1))) {
      members.set(p, e);
      return true;
    }
    others.add(p);
    return false;
  };
  for (const p of table.keys()) isMember(p);
  for (const [p, e] of members) if (e.state === 'Z' || e.state === 'X') members.delete(p);
  return members;
}

/** Exported for its test. */
export function signalFreezer(pid: number): Freezer {
  const ns = pidNamespace(pid);
  if (!ns) throw new SandboxError(`no process ${pid}: the sandbox is not running`);
  // Every sandbox has a pid namespace of its own (the launcher's CLONE_NEWPID): a pid in this one is
  // not a sandbox's init (a pid reused since it ended), and stopping its namespace would stop us.
  if (ns === pidNamespace(process.pid))
    throw new SandboxError(`process ${pid} is not a sandbox: it is in this process's own pid namespace`);
  // pid -> start time: a pid names a process only with its start time. One may end and its pid go to
  // another process between the /proc scan and the SIGSTOP, or before the thaw's SIGCONT (which must
  // resume only what this freeze stopped). Checked just before each signal: the window left is that
  // of one /proc read.
  const stopped = new Map<number, string>();
  const signal = (p: number, start: string, sig: NodeJS.Signals) => {
    if (processStart(p) !== start) return; // ended, or its pid is another process's now
    try {
      process.kill(p, sig);
    } catch {
      /* gone */
    }
  };
  let running: string[] = [];
  return {
    dir: '',
    file: '',
    freeze: 'SIGSTOP',
    thaw: 'SIGCONT',
    // Stops what runs; frozen once a pass finds every process stopped (one forked meanwhile is found by the next).
    frozen: () => {
      running = [];
      for (const [p, { state, start }] of sandboxProcesses(pid, ns)) {
        if (state === 'T' || state === 't') continue;
        running.push(`${p} (state ${state})`);
        stopped.set(p, start);
        signal(p, start, 'SIGSTOP');
      }
      return running.length === 0;
    },
    resume: () => {
      for (const [p, start] of stopped) signal(p, start, 'SIGCONT');
    },
    // A process that waits on a vfork child stopped here, or sleeps uninterruptibly, never stops.
    pending: () => `process ${running.join(', ')} did not stop`,
  };
}

/**
 * Freezes the sandbox whose init has host pid `pid` and resolves once every process in it is
 * frozen (the kernel freezes asynchronously: v1 passes through FREEZING, v2 reports in
 * cgroup.events). Rejects, thawed again, if that does not happen within `timeoutMs`.
 */
export async function freezeSandbox(pid: number, timeoutMs = 10_000): Promise<Thaw> {
  let f = cgroupFreezer(pid);
  if (!f && rootless()) {
    f = signalFreezer(pid);
    warnOnce(
      'freeze',
      'rootless: no cgroup is delegated to you here, so the container is paused by stopping its processes ' +
        '(SIGSTOP, then SIGCONT), which they can observe',
    );
  }
  const fr = f ?? freezerOf(pid);
  const { file, resume } = fr;
  let thawed = false;
  const thaw: Thaw = () => {
    if (thawed) return;
    thawed = true;
    process.off('exit', thaw);
    if (resume) return resume();
    try {
      write(file, fr.thaw);
    } catch {
      /* the cgroup is gone with the sandbox: nothing is frozen */
    }
  };
  // A caller that exits on a second Ctrl-C (process.exit) still thaws; only SIGKILL leaves it frozen.
  process.once('exit', thaw);
  if (!resume) write(file, fr.freeze);
  await waitFrozen(fr, pid, timeoutMs, thaw);
  return thaw;
}

/** Resolves once `fr` reports the sandbox frozen; thaws and rejects after `timeoutMs`. Exported for its test. */
export async function waitFrozen(fr: Freezer, pid: number, timeoutMs: number, thaw: Thaw): Promise<void> {
  const { file } = fr;
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; !fr.frozen(); i++) {
    if (Date.now() > deadline) {
      // Never left half-stopped: everything stopped so far runs again before the error is thrown.
      thaw();
      const why = fr.pending ? ` (${fr.pending()})` : '';
      throw new SandboxError(`the sandbox of pid ${pid} did not freeze within ${timeoutMs} ms${why}; it runs again`);
    }
    // v1 retries a task that was not freezable yet only when the state is written again.
    if (fr.freeze === 'FROZEN') write(file, fr.freeze);
    // Polled, not spun (signalFreezer's frozen() stops what it finds running, each pass a /proc scan):
    // the event loop must run meanwhile, for Ctrl-C among others.
    await sleep(i < 20 ? 1 : 10);
  }
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
  // Without a cgroup, SIGKILL of init takes the pid namespace with it, stopped processes too.
  let f: Freezer | undefined;
  try {
    f = cgroupFreezer(pid);
  } catch {
    /* gone already */
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
