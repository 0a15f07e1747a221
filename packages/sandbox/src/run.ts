// run(): one command in a sandbox, from an empty per-run state directory to a torn-down one.
//
//   Node (this file)                launcher (C, native/launcher.c)
//   state dir, init layer, hosts ─► joins cgroup, unshares, forks PID 1
//   cgroup with limits               PID 1: overlay, /proc, /dev, /sys, binds, pivot_root, then the
//                                    command itself (or, with `init`, its init)
//   pipes stdio, waits          ◄── "exit N" | "signal N" | "error ..." | "setup ..." on fd 4
//   OOM check, cgroup + state removed
import { spawn, type StdioOptions } from 'node:child_process';
import { statSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { Exit, Launched, LaunchIO, Limits, Mount, PrivateNetwork, SandboxSpec } from './types.js';
import { collectStatus, encodeSpec, launchEnd, launcherProcess } from './spec.js';
import { launcherPath } from './launcher.js';
import { buildInitLayer } from './initlayer.js';
import { defaultHosts, defaultResolvConf, writeHostFiles } from './hostfiles.js';
import { startNetwork } from './network.js';
import { privateResolvConf } from './addresses.js';
import { cgroupDriver, delegationPlan, limitFlags, type RunCgroup } from './cgroup/index.js';
import { allowedDevices } from './cgroup/devices.js';
import { cleanupStale, defaultStateDir, makeRunDir, newRunId, removeRunDir } from './state.js';
import { rootless, warnOnce } from './userns.js';
import { SandboxError, abortError } from './errors.js';

export const signalNames = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name]));

const cleanedStateDirs = new Set<string>();

function validate(spec: SandboxSpec): void {
  if (spec.argv.length === 0) throw new SandboxError('argv is empty');
  if (!spec.cwd.startsWith('/')) throw new SandboxError(`cwd must be absolute: ${spec.cwd}`);
  for (const p of [spec.root.upperdir, spec.root.workdir, ...spec.root.lowerdirs])
    if (!p.startsWith('/')) throw new SandboxError(`root paths must be absolute: ${p}`);
  if (spec.ports?.length && (spec.network !== 'private' || spec.netns || spec.netnsPid))
    throw new SandboxError("ports can only be published from a private network of the run's own");
}

function mountKinds(mounts: Mount[]): { mount: Mount; kind: 'dir' | 'file' }[] {
  // Shallow targets first, so that /a is mounted before /a/b is mounted inside it.
  const sorted = [...mounts].sort((a, b) => a.target.split('/').length - b.target.split('/').length);
  return sorted.map((mount) => {
    if (mount.type === 'tmpfs') return { mount, kind: 'dir' as const };
    if (!mount.source) throw new SandboxError(`bind mount on ${mount.target} has no source`);
    let st;
    try {
      st = statSync(mount.source);
    } catch (e) {
      throw new SandboxError(`bind mount source ${mount.source}: ${(e as Error).message}`);
    }
    return { mount, kind: st.isDirectory() ? ('dir' as const) : ('file' as const) };
  });
}

/** The cgroup v2 controller each limit needs. */
function controllersOf(limits: Limits): string[] {
  const out: string[] = [];
  if (limits.cpuQuota !== undefined || limits.cpuPeriod !== undefined) out.push('cpu');
  if (limits.memoryBytes !== undefined) out.push('memory');
  if (limits.pidsLimit !== undefined) out.push('pids');
  return out;
}

function without(limits: Limits, controllers: string[]): Limits {
  const out = { ...limits };
  if (controllers.includes('cpu')) {
    delete out.cpuQuota;
    delete out.cpuPeriod;
  }
  if (controllers.includes('memory')) delete out.memoryBytes;
  if (controllers.includes('pids')) delete out.pidsLimit;
  return out;
}

/**
 * Rootless: the limits that the delegated cgroup can apply (see cgroup/delegation.ts). The others
 * are dropped, and said so once per process, naming the flags and why: the run goes on, as a
 * rootless build must work where the system delegates nothing.
 */
function rootlessLimits(limits: Limits): Limits {
  const wanted = controllersOf(limits);
  if (wanted.length === 0) return limits;
  const d = cgroupDriver()?.delegation;
  const flags = (cs: string[]) => cs.map((c) => limitFlags[c]).join(', ');
  let dropped: string[];
  let why: string;
  if (!d) {
    const plan = delegationPlan();
    dropped = wanted;
    why = `no cgroup is delegated to you here (${plan.delegated ? 'unused' : plan.reason})`;
  } else {
    dropped = wanted.filter((c) => !d.controllers.includes(c));
    why =
      `the cgroup delegated to you (${d.dir}) has no ${dropped.join(', ')} controller ` +
      `(delegated: ${d.controllers.join(' ') || 'none'})`;
    const usable = wanted.filter((c) => d.controllers.includes(c));
    const problem = usable.length > 0 ? d.enable(usable) : undefined;
    if (problem) {
      dropped = wanted;
      why = `the controllers of the cgroup delegated to you (${d.dir}) cannot be enabled: ${problem}`;
    }
  }
  if (dropped.length === 0) return limits;
  warnOnce(`limits:${dropped.join(',')}`, `rootless: ${flags(dropped)} not applied: ${why}`);
  return without(limits, dropped);
}

export async function run(spec: SandboxSpec): Promise<Exit> {
  validate(spec);
  if (spec.signal?.aborted) throw abortError(spec.signal);
  const stateDir = spec.stateDir ?? defaultStateDir();
  const id = newRunId();
  const dir = makeRunDir(stateDir, id);
  let cg: RunCgroup | undefined;
  // A private network of the run's own (a container's, with its ports), unless it joins one.
  let own: PrivateNetwork | undefined;
  try {
    if (spec.network === 'private' && !spec.netns && !spec.netnsPid)
      own = await startNetwork({ ports: spec.ports, signal: spec.signal, stateDir });
    const net = spec.netns ?? own;
    const netnsPid = net?.pid ?? spec.netnsPid;
    const initDir = join(dir, 'init');
    const rootdir = join(dir, 'root');
    mkdirSync(initDir);
    mkdirSync(rootdir);
    const kinds = mountKinds(spec.mounts ?? []);
    const mounts = buildInitLayer(initDir, spec.root.lowerdirs, kinds);
    const hostname = spec.hostname ?? 'tsbuild';
    const resolv =
      spec.resolvConf ?? (spec.network !== 'private' ? defaultResolvConf() : (net?.resolvConf ?? privateResolvConf()));
    const extra = (spec.extraHosts ?? []).map((e) => `${e.ip}\t${e.host}\n`).join('');
    const files = writeHostFiles(dir, (spec.hosts ?? defaultHosts(spec.network, hostname)) + extra, resolv, hostname);

    const driver = cgroupDriver();
    const limits = rootless() ? rootlessLimits(spec.limits ?? {}) : (spec.limits ?? {});
    if (!driver && Object.values(limits).some((v) => v !== undefined))
      throw new SandboxError('resource limits need cgroups, and none are mounted at /sys/fs/cgroup');
    cg = driver?.create(id, limits, { freezable: spec.freezable });

    // hrtime, not performance.now(): that global loads perf_hooks, milliseconds of a container's start.
    const started = process.hrtime.bigint();
    const encoded = encodeSpec({
      lowerdirs: [initDir, ...spec.root.lowerdirs],
      upperdir: spec.root.upperdir,
      workdir: spec.root.workdir,
      volatile: spec.root.volatile,
      rootdir,
      ...launcherProcess(spec),
      hostname,
      network: spec.network,
      hostsFile: files.hosts,
      resolvFile: files.resolv,
      hostnameFile: files.hostname,
      mounts,
      mountKinds: kinds.map((k) => k.kind),
      cgroupProcs: cg?.procsFiles ?? [],
      cgroupMounts: cg?.mounts,
      deviceCgroup: cg?.deviceCgroup,
      deviceRules: allowedDevices,
      // v1 joins the devices controller (cgroupProcs), v2 attaches deviceRules: either way, an allowlist.
      devWritable: cg !== undefined || rootless(),
      init: spec.init,
      makeCwd: spec.makeCwd,
      netnsPid,
      noNetRaw: spec.network !== 'none',
      shmSize: spec.shmSize,
      rlimits: spec.rlimits,
      rootless: rootless(),
    });
    // Forked by the network's holder when it was started for this container (NetworkOptions.launcherStdio).
    const launched = net?.launch?.(encoded, spec) ?? launch(spec, encoded);
    launched.catch(() => {
      /* awaited below */
    });
    if (!cleanedStateDirs.has(stateDir)) {
      // Once per process: a tsbuild killed mid-run leaves its state directory and cgroups behind. Swept
      // while the launcher starts (this thread would only wait for it): the sweep takes only what
      // belongs to processes that have ended, never this run's.
      // A sweep that fails leaves the leftovers to the next process's; this run does not depend on it,
      // and throwing here would leave the launcher just spawned to the finally block alone.
      cleanedStateDirs.add(stateDir);
      await cleanupStale(stateDir).catch(() => {});
    }
    const { outcome, aborted } = await launched;
    const usage = { cpuNanos: cg?.cpuNanos(), wallMs: Number(process.hrtime.bigint() - started) / 1e6 };
    if (aborted) throw abortError(spec.signal!);
    const oomKilled = cg?.oomKilled() ?? false;
    switch (outcome.kind) {
      case 'exit':
        return { code: outcome.code, oomKilled, usage };
      case 'signal':
        return {
          code: 128 + outcome.signal,
          signal: signalNames.get(outcome.signal) ?? `SIG${outcome.signal}`,
          oomKilled,
          usage,
        };
      case 'error':
        return { code: outcome.code, oomKilled, startError: outcome.message, usage };
      case 'setup':
        throw new SandboxError(outcome.message);
    }
    throw new SandboxError(`unknown launcher outcome ${JSON.stringify(outcome)}`);
  } finally {
    await cg?.destroy();
    await own?.close();
    removeRunDir(dir);
  }
}

type Stdio = Readable | Writable | 'ignore' | 'inherit' | number | undefined;

function stdioFor(v: Stdio): 'pipe' | 'ignore' | 'inherit' | number {
  if (v === undefined || v === 'ignore') return 'ignore';
  if (v === 'inherit' || typeof v === 'number') return v;
  return 'pipe';
}

/** Spawns the launcher with `encoded` on fd 3 and waits for its outcome on fd 4. */
export function launch(spec: LaunchIO, encoded: Buffer): Promise<Launched> {
  const stdin = spec.stdin && typeof spec.stdin === 'object' ? spec.stdin : undefined;
  const stdout = spec.stdout && typeof spec.stdout === 'object' ? spec.stdout : undefined;
  const stderr = spec.stderr && typeof spec.stderr === 'object' ? spec.stderr : undefined;
  // Without a consumer the command writes straight to /dev/null: no copying through Node.
  const stdio: StdioOptions = [stdioFor(spec.stdin), stdioFor(spec.stdout), stdioFor(spec.stderr), 'pipe', 'pipe'];
  return new Promise((resolve, reject) => {
    const child = spawn(launcherPath(), [], {
      stdio,
      env: {},
      detached: spec.newSession ?? false,
      argv0: 'tsbuild-init',
    });
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      // The launcher's death takes PID 1 (PDEATHSIG) and with it the whole pid namespace.
      child.kill('SIGKILL');
    };
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    const statusText = collectStatus(child.stdio[4] as Readable, spec.onStart);
    const specStream = child.stdio[3] as Writable;
    specStream.on('error', () => {
      /* the launcher died early; its status says why */
    });
    specStream.end(encoded);
    if (stdin && child.stdin) {
      child.stdin.on('error', () => {
        /* the command stopped reading */
      });
      stdin.pipe(child.stdin);
    }
    if (stdout && child.stdout) child.stdout.pipe(stdout, { end: false });
    if (stderr && child.stderr) child.stderr.pipe(stderr, { end: false });
    child.on('error', (e) => {
      spec.signal?.removeEventListener('abort', onAbort);
      reject(new SandboxError(`cannot start the launcher ${launcherPath()}: ${e.message}`));
    });
    child.on('close', (code, sig) => {
      spec.signal?.removeEventListener('abort', onAbort);
      if (stdin && child.stdin) stdin.unpipe(child.stdin);
      try {
        resolve(launchEnd(statusText(), aborted, sig ?? `exit ${code}`));
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}
