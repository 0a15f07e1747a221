// Starting a container: its image's layers + the container's upper dir in the sandbox, with its
// mounts and limits, while the state document follows (running with pid, then exited with code).
// The process calling runContainer is the container's "runner": the foreground `tsbuild run`, or a
// detached supervisor (supervisor.ts) for `run -d` / `start`.
import { openSync, closeSync, promises as fsp } from 'node:fs';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { run as sandboxRun, withHome, type Exit, type Mount } from '@tsbuild/sandbox';
import type { Store } from '@tsbuild/layerstore';
import { processStart } from '@tsbuild/sys';
import {
  ContainerError,
  containerDir,
  findDoc,
  isRunning,
  readDoc,
  refresh,
  updateDoc,
  type ContainerDoc,
} from './state.js';
import { getVolume } from './volumes.js';
import { removeContainer } from './remove.js';

export interface RunIO {
  stdin?: Readable | 'ignore' | 'inherit' | number;
  stdout?: Writable | 'inherit' | number;
  stderr?: Writable | 'inherit' | number;
  detached?: boolean;
  /** Called with the init's host pid once the container exists. */
  onStart?: (pid: number) => void;
  newSession?: boolean;
}

async function sandboxMounts(store: Store, doc: ContainerDoc): Promise<Mount[]> {
  const out: Mount[] = [];
  for (const m of doc.Config.mounts) {
    if (m.type === 'bind') out.push({ type: 'bind', source: m.source, target: m.target, readonly: m.readonly });
    else {
      const v = await getVolume(store, m.name);
      if (!v) throw new ContainerError(`volume ${m.name} of container ${doc.Name} no longer exists`);
      out.push({ type: 'bind', source: v.Mountpoint, target: m.target, readonly: m.readonly });
    }
  }
  return out;
}

type NetworkMode = 'host' | 'none' | 'private';

function modeOf(network: string): NetworkMode {
  return network === 'none' || network === 'host' ? network : 'private';
}

/**
 * The sandbox's network for a container's `--network`: 'default' is a private network of its own
 * (with its published ports), `container:NAME` joins the namespace of that container's init.
 */
async function networkOf(store: Store, network: string): Promise<{ network: NetworkMode; netnsPid?: number }> {
  if (network.startsWith('container:')) {
    const other = await refresh(store, await findDoc(store, network.slice('container:'.length)));
    if (!isRunning(other))
      throw new ContainerError(`cannot join the network of container ${other.Name}: it is not running`);
    return { network: modeOf(other.Config.network), netnsPid: other.State.Pid };
  }
  return { network: modeOf(network) };
}

/** Runs the container to its end, recording its state. Throws (state: exited, Error set) if it cannot start. */
export async function runContainer(store: Store, id: string, io: RunIO): Promise<Exit> {
  const doc = await readDoc(store, id);
  if (!doc) throw new ContainerError(`No such container: ${id}`);
  const cfg = doc.Config;
  const runnerStart = processStart(process.pid);
  try {
    const image = await store.images.get(doc.Image);
    if (!image)
      throw new ContainerError(
        `the image ${cfg.image.ref} (${doc.Image}) of container ${doc.Name} is no longer in the store`,
      );
    // Its active snapshot: the image's layers under the upperdir it has kept since it was created.
    const root = await store.snapshotter.mounts(containerDir(store, id), image.layers).catch((e: Error) => {
      throw new ContainerError(`container ${doc.Name} cannot start: ${e.message}`);
    });
    const mounts = await sandboxMounts(store, doc);
    const net = await networkOf(store, cfg.network);
    await updateDoc(store, id, (d) => {
      d.State = { Status: 'created', Runner: process.pid, RunnerStart: runnerStart, Detached: io.detached ?? false };
    });
    const exit = await sandboxRun({
      root: { lowerdirs: root.lowerdirs, upperdir: root.upperdir, workdir: root.workdir },
      argv: cfg.argv,
      env: cfg.home === undefined ? cfg.env : withHome(cfg.env, cfg.home),
      cwd: cfg.cwd,
      uid: cfg.uid,
      gid: cfg.gid,
      additionalGids: cfg.additionalGids,
      hostname: cfg.hostname,
      network: net.network,
      netnsPid: net.netnsPid,
      ports: cfg.ports,
      mounts,
      limits: cfg.limits,
      // `tsbuild commit` freezes a running container while it reads the upperdir.
      freezable: true,
      tty: cfg.tty,
      init: cfg.init,
      stdin: io.stdin ?? 'ignore',
      stdout: io.stdout,
      stderr: io.stderr,
      newSession: io.newSession,
      onStart: (pid) => {
        const start = processStart(pid);
        void updateDoc(store, id, (d) => {
          d.State.Status = 'running';
          d.State.Pid = pid;
          d.State.PidStart = start;
          d.State.StartedAt = new Date().toISOString();
        }).then(() => io.onStart?.(pid));
      },
    });
    // Let the "running" write land before the final one.
    await new Promise((r) => setImmediate(r));
    await updateDoc(store, id, (d) => {
      d.State.Status = 'exited';
      d.State.ExitCode = exit.code;
      d.State.OOMKilled = exit.oomKilled;
      d.State.FinishedAt = new Date().toISOString();
      if (exit.startError) d.State.Error = exit.startError;
      else delete d.State.Error;
    });
    return exit;
  } catch (e) {
    await updateDoc(store, id, (d) => {
      d.State.Status = 'exited';
      d.State.ExitCode = 125;
      d.State.FinishedAt = new Date().toISOString();
      d.State.Error = (e as Error).message;
    }).catch(() => {});
    throw e;
  } finally {
    if (cfg.autoRemove) await removeContainer(store, id, { volumes: true }).catch(() => {});
  }
}

/** The supervisor script, found through the package (the CLI itself may run from a bundle). */
export function supervisorPath(): string {
  const root = dirname(createRequire(import.meta.url).resolve('@tsbuild/containers/package.json'));
  return join(root, 'dist', 'src', 'supervisor.js');
}

/**
 * Starts the container under a detached supervisor (its own session, output to the container's
 * log) and waits until it is running or has failed to start.
 */
export async function startDetached(store: Store, id: string): Promise<ContainerDoc> {
  const doc = await readDoc(store, id);
  if (!doc) throw new ContainerError(`No such container: ${id}`);
  await fsp.appendFile(doc.LogPath, '');
  const log = openSync(doc.LogPath, 'a');
  // Mark who starts it, so that a waiting reader never sees a stale "exited" from an earlier run.
  await updateDoc(store, id, (d) => {
    d.State = { Status: 'created', Detached: true };
  });
  const child = spawn(process.execPath, [supervisorPath(), store.root, id], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const supervisorPid = child.pid;
  child.unref();
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  for (let i = 0; i < 600; i++) {
    const d = await readDoc(store, id);
    if (!d) throw new ContainerError(`container ${id} vanished while starting`);
    if (d.State.Status === 'running' && d.State.Pid) return d;
    if (d.State.Status === 'exited' && d.State.Runner === supervisorPid) {
      if (d.State.ExitCode === 125 && d.State.Error) throw new ContainerError(d.State.Error);
      return d;
    }
    if (exited && d.State.Status !== 'running' && d.State.Runner !== supervisorPid) {
      throw new ContainerError(`the supervisor of ${d.Name} ended before starting it; see ${d.LogPath}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new ContainerError(`container ${doc.Name} did not start within 15 s`);
}
