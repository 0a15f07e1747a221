// `tsbuild exec`: one more process in a running container, in its namespaces and cgroup, with the
// container's environment and user unless the flags say otherwise.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { isOpaque, type Store } from '@tsbuild/layerstore';
import {
  asContainerProcess,
  exec as sandboxExec,
  resolveUser,
  RootView,
  withHome,
  type Exit,
  type ExecSpec,
  type ProcessSpec,
} from '@tsbuild/sandbox';
import { applyEnv } from './env.js';
import { firstLine, supervisorPath } from './runner.js';
import { ContainerError, isRunning, refresh, type ContainerDoc } from './state.js';

export interface ExecOptions extends Pick<
  ProcessSpec,
  'tty' | 'stdin' | 'stdout' | 'stderr' | 'newSession' | 'onStart'
> {
  argv: string[];
  /** `-e K=V` / `-e K`, over the container's environment. */
  env?: string[];
  /** `-u USER[:GROUP]`, resolved in the container's own /etc/passwd (upperdir over its image). */
  user?: string;
  workdir?: string;
}

/** Runs a process in the running container `doc` to its end. */
export async function execInContainer(store: Store, doc: ContainerDoc, o: ExecOptions): Promise<Exit> {
  return sandboxExec({
    ...(await execSpec(store, doc, o)).spec,
    stdin: o.stdin,
    stdout: o.stdout,
    stderr: o.stderr,
    newSession: o.newSession,
    onStart: o.onStart,
  });
}

/**
 * `exec -d`: starts a process in the running container `doc` and returns once it runs, as docker exec -d. Its
 * output goes nowhere (docker drops it too). The launcher dies with the process that started it, and the command
 * with the launcher, so a helper (exec-detached.ts) in a session of its own starts it and stays until it ends.
 * Throws what a foreground exec would have reported: the container, the user, or why the command cannot start.
 */
export async function execDetached(store: Store, doc: ContainerDoc, o: DetachedExecOptions): Promise<void> {
  const { spec, pidStart, name } = await execSpec(store, doc, o);
  const child = spawn(process.execPath, [join(dirname(supervisorPath()), 'exec-detached.js')], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore', 'pipe'],
    // It may outlive this process by long: it holds no directory of the caller's.
    cwd: '/',
  });
  child.unref();
  const spawned = new Promise<never>((_, reject) =>
    child.on('error', (e) => reject(new ContainerError(`cannot start exec's helper: ${e.message}`))),
  );
  spawned.catch(() => {});
  // The spec on stdin, not in its arguments: -e values are nobody else's to read in ps.
  child.stdin!.on('error', () => {
    /* it died first: its fd 3 says nothing, which is reported */
  });
  child.stdin!.end(JSON.stringify({ spec, pidStart, name } satisfies DetachedRequest));
  const line = await Promise.race([firstLine(child.stdio[3] as Readable), spawned]);
  let outcome: DetachedOutcome | undefined;
  try {
    outcome = line === undefined ? undefined : (JSON.parse(line) as DetachedOutcome);
  } catch {
    /* reported below */
  }
  if (!outcome)
    throw new ContainerError(
      `exec's helper ended without starting the command${line === undefined ? '' : ` (it said ${line})`}`,
    );
  if (!outcome.running) throw new ContainerError(outcome.error);
}

/**
 * What execDetached gives exec-detached.ts on its stdin. `pidStart`: the container's PID 1 as it was seen running
 * (its start time), checked again right before the launch: the helper starts a while later, and a pid the
 * container's end freed and the host reused must not be entered.
 */
export interface DetachedRequest {
  spec: ExecSpec;
  pidStart?: string;
  name: string;
}

/** What exec-detached.ts tells execDetached on its fd 3, one JSON line. */
export type DetachedOutcome = { running: true } | { running: false; error: string };

export type DetachedExecOptions = Omit<ExecOptions, 'stdin' | 'stdout' | 'stderr' | 'newSession' | 'onStart'>;

/** What a process in `doc` runs as: the container's own settings under the flags. */
async function execSpec(
  store: Store,
  doc: ContainerDoc,
  o: DetachedExecOptions,
): Promise<{ spec: ExecSpec; pidStart?: string; name: string }> {
  const d = await refresh(store, doc);
  if (!isRunning(d)) throw new ContainerError(`container ${d.Name} is not running`, 'conflict');
  const env = applyEnv(d.Config.env, o.env ?? []);
  let who = { uid: d.Config.uid, gid: d.Config.gid, additionalGids: d.Config.additionalGids, home: d.Config.home };
  if (o.user !== undefined) {
    // Users the container itself added count: resolve in its own view (upper dir over the image).
    const image = await store.images.get(d.Image);
    const lowers = image ? (await store.snapshotter.view(image.layers)).lowerdirs : [];
    const r = await resolveUser(new RootView([d.UpperDir, ...lowers], isOpaque), o.user).then(
      asContainerProcess,
      (e) => {
        throw new ContainerError((e as Error).message);
      },
    );
    who = { uid: r.uid, gid: r.gid, additionalGids: r.additionalGids ?? [], home: r.home };
  }
  const spec: ExecSpec = {
    pid: d.State.Pid!,
    argv: o.argv,
    env: who.home === undefined ? env : withHome(env, who.home),
    cwd: o.workdir ?? d.Config.cwd,
    uid: who.uid,
    gid: who.gid,
    additionalGids: who.additionalGids,
    keepNetRaw: d.Config.network === 'none',
    tty: o.tty,
  };
  return { spec, pidStart: d.State.PidStart, name: d.Name };
}
