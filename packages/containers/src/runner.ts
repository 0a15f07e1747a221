// Starting a container: its image's layers + the container's upper dir in the sandbox, with its
// mounts and limits, while the state document follows (running with pid, then exited with code).
// The process calling runContainer is the container's "runner": the foreground `tsbuild run`, or a
// detached supervisor (supervisor.ts) for `run -d` / `start`.
import { closeSync, mkdirSync, openSync, promises as fsp, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Readable, Writable } from 'node:stream';
import {
  run as sandboxRun,
  startNetwork,
  withHome,
  type Exit,
  type LauncherStdio,
  type Mount,
  type PortMapping,
  type PrivateNetwork,
} from '@tsbuild/sandbox';
import type { ActiveSnapshot, Image, Store } from '@tsbuild/layerstore';
import { processStart, removeTreeBeneath } from '@tsbuild/sys';
import {
  ContainerError,
  containerDir,
  findDoc,
  isRunning,
  ranVolatile,
  readDoc,
  refresh,
  refuseLostVolatile,
  runnerState,
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
  /**
   * Its own network, started ahead by networkAhead() for this container's `--network` and ports:
   * the runner takes it over (and ends it). Without it the runner starts the network itself.
   */
  network?: Promise<PrivateNetwork>;
  /**
   * The container's image as the caller has just read (and leased) it: `run` created the container
   * from it a moment ago. Otherwise (start, the supervisor) it is looked up again by digest.
   */
  image?: Image;
  /** The fsyncs of its document, from createToRun: done before its process starts. */
  synced?: Promise<void>;
  /** Its active snapshot as createToRun has just prepared it (otherwise looked up again). */
  root?: ActiveSnapshot;
  /** Told each step of the start and the end, for TSBUILD_TRACE. */
  trace?: (what: string) => void;
}

async function sandboxMounts(store: Store, doc: ContainerDoc): Promise<Mount[]> {
  const out: Mount[] = [];
  for (const m of doc.Config.mounts) {
    if (m.type === 'bind') {
      if (m.create) makeSourceDir(m.source);
      out.push({
        type: 'bind',
        source: m.source,
        target: m.target,
        readonly: m.readonly,
        ...(m.nonrecursive ? { nonrecursive: true } : {}),
      });
    }
    // noexec, nosuid and nodev, as docker mounts a tmpfs there.
    else if (m.type === 'tmpfs') out.push({ ...m, noexec: true });
    else {
      const v = await getVolume(store, m.name);
      if (!v) throw new ContainerError(`volume ${m.name} of container ${doc.Name} no longer exists`);
      out.push({ type: 'bind', source: v.Mountpoint, target: m.target, readonly: m.readonly });
    }
  }
  return out;
}

/**
 * A -v bind's missing source, made as docker's daemon makes it: with its missing parents, each 0755 (the daemon's
 * umask is 022, whatever this process's), the host's path as given (its symlinks followed, a dangling one refused).
 * The mode comes from the umask at mkdir(2), never from a chmod by path after it: someone who may write in a
 * parent could put a symlink where the directory was made and have the chmod land on any host file.
 */
function makeSourceDir(source: string): void {
  // A file, a directory, or a symlink to one: bound as it is (anything else the mkdirs below say).
  try {
    statSync(source);
    return;
  } catch {
    /* missing, or below a file */
  }
  const parts = source.split('/').filter(Boolean);
  const umask = process.umask(0o022); // synchronous from here to the restore: nothing else runs meanwhile
  try {
    for (let i = 1; i <= parts.length; i++) {
      const dir = '/' + parts.slice(0, i).join('/');
      try {
        mkdirSync(dir, 0o755);
      } catch (e) {
        let code = (e as NodeJS.ErrnoException).code ?? '';
        if (code === 'EEXIST') {
          if (isDir(dir)) continue;
          code = 'ENOTDIR'; // Go's MkdirAll: "mkdir /tmp/f: not a directory"
        }
        const why = goErrno[code] ?? (e as Error).message;
        // Not started: the container stays Created, as docker's does when its daemon cannot make the path.
        throw new ContainerStartError(`error while creating mount source path '${source}': mkdir ${dir}: ${why}`, 125);
      }
    }
  } finally {
    process.umask(umask);
  }
}

/** Go's texts for the errnos mkdir(2) gives, as docker's messages carry them. */
const goErrno: Record<string, string> = {
  ENOTDIR: 'not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  ENOENT: 'no such file or directory',
};

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

type NetworkMode = 'host' | 'none' | 'private';

function modeOf(network: string): NetworkMode {
  return network === 'none' || network === 'host' ? network : 'private';
}

/** `--network default`: a private network of the container's own (not none, host or container:NAME). */
function hasOwnNetwork(network: string): boolean {
  return !network.startsWith('container:') && modeOf(network) === 'private';
}

/**
 * The private network of a container's own (`--network default`, with its published ports), started
 * now: its helper comes up in processes of its own (tens of ms) while this one reads the store and
 * creates the container. Undefined for the other modes. Hand it to runContainer (RunIO.network),
 * or to discardNetwork when the container is not run after all.
 */
export function networkAhead(
  network: string,
  ports: PortMapping[] = [],
  launcherStdio?: LauncherStdio,
): Promise<PrivateNetwork> | undefined {
  if (!hasOwnNetwork(network)) return undefined;
  // With the container's stdio known now, its launcher is forked by the network's holder (one fork of Node less).
  const started = startNetwork({ ports, launcherStdio });
  // Awaited where it is used (its failure is the container's); until then, not an unhandled rejection.
  started.catch(() => {});
  return started;
}

/** Ends a network from networkAhead() that no container took over. */
export function discardNetwork(network: Promise<PrivateNetwork> | undefined): Promise<void> {
  return (
    network?.then(
      (n) => n.close({ wait: false }),
      () => {},
    ) ?? Promise.resolve()
  );
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

/**
 * A `--rm` container runs on a volatile overlay: its end does not sync the host's disk (that
 * waited for every dirty page of the filesystem, seconds on a busy one), since its layer is thrown
 * away. The kernel marks the workdir (WORKDIR/work/incompat/volatile) and refuses to mount it
 * again; a container whose removal never came (its runner was killed) is started again on the
 * same upperdir, intact if the host has not restarted since: its workdir (overlay's scratch) is
 * made anew. After a restart its layer may have lost writes, and it is not started.
 */
function reclaimVolatile(doc: ContainerDoc): void {
  if (!ranVolatile(doc)) return;
  refuseLostVolatile(doc);
  removeTreeBeneath(doc.WorkDir);
}

/** Runs the container to its end, recording its state. Throws (state: exited, Error set) if it cannot start. */
export async function runContainer(store: Store, id: string, io: RunIO): Promise<Exit> {
  const trace = io.trace ?? (() => {});
  // A network started ahead is ended on every way out before the container takes it over.
  const doc = await readDoc(store, id).catch(async (e: unknown) => {
    await discardNetwork(io.network);
    throw e;
  });
  if (!doc) {
    await discardNetwork(io.network);
    throw new ContainerError(`No such container: ${id}`);
  }
  const cfg = doc.Config;
  // Its own network comes up while the rest is prepared (networkAhead); one handed over for another
  // mode than its own (none, host, container:NAME) is not used, only ended.
  if (!hasOwnNetwork(cfg.network)) void discardNetwork(io.network);
  const own = hasOwnNetwork(cfg.network) ? (io.network ?? networkAhead(cfg.network, cfg.ports)) : undefined;
  // A `--rm` container's states until its removal need no fsync (state.ts writeDoc).
  const durable = !cfg.autoRemove;
  let remove = cfg.autoRemove;
  const runnerStart = processStart(process.pid);
  // The "running" write, awaited on every way out (it replaces the whole document).
  let running: Promise<unknown> | undefined;
  try {
    const image = io.image?.manifestDigest === doc.Image ? io.image : await store.images.get(doc.Image);
    if (!image)
      throw new ContainerError(
        `the image ${cfg.image.ref} (${doc.Image}) of container ${doc.Name} is no longer in the store`,
      );
    // A user its image lacks (create.ts): docker fails every start with it, before anything runs (125).
    if (cfg.userError !== undefined) throw new ContainerStartError(cfg.userError, 125);
    // Refused, it is kept (not removed as --rm asks): the user decides, told what happened.
    if (cfg.autoRemove)
      try {
        reclaimVolatile(doc);
      } catch (e) {
        remove = false;
        throw e;
      }
    // Its active snapshot: the image's layers under the upperdir it has kept since it was created (made a
    // moment ago by createToRun, whose lease and this process's hold them since).
    const root =
      io.root?.key === containerDir(store, id)
        ? io.root
        : await store.snapshotter.mounts(containerDir(store, id), image.layers).catch((e: Error) => {
            throw new ContainerError(`container ${doc.Name} cannot start: ${e.message}`);
          });
    const mounts = await sandboxMounts(store, doc);
    const net = await networkOf(store, cfg.network);
    // Who runs it, unless its creation said so already (`run` in the foreground: createContainer's runHere).
    const state = runnerState(process.pid, io.detached ?? false, cfg.autoRemove);
    if (!isDeepStrictEqual(doc.State, state))
      await updateDoc(
        store,
        id,
        (d) => {
          d.State = state;
        },
        { durable },
      );
    trace('state recorded');
    const netns = await own;
    if (netns) trace('network up');
    await io.synced;
    const exit = await sandboxRun({
      root: { lowerdirs: root.lowerdirs, upperdir: root.upperdir, workdir: root.workdir, volatile: cfg.autoRemove },
      argv: cfg.argv,
      env: cfg.home === undefined ? cfg.env : withHome(cfg.env, cfg.home),
      cwd: cfg.cwd,
      // docker run makes a -w (or WorkingDir) directory the image lacks.
      makeCwd: true,
      uid: cfg.uid,
      gid: cfg.gid,
      additionalGids: cfg.additionalGids,
      hostname: cfg.hostname,
      network: net.network,
      netns,
      netnsPid: net.netnsPid,
      // Published by its own network already.
      ports: netns ? [] : cfg.ports,
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
        trace('container started');
        const start = processStart(pid);
        running = updateDoc(
          store,
          id,
          (d) => {
            d.State.Status = 'running';
            d.State.Pid = pid;
            d.State.PidStart = start;
            d.State.StartedAt = new Date().toISOString();
          },
          { durable },
        ).then(() => io.onStart?.(pid));
      },
    });
    // The "running" write lands before the final one (both replace the whole document).
    const started = running !== undefined;
    await running?.catch(() => {});
    trace('container ended');
    await updateDoc(
      store,
      id,
      (d) => {
        // A command that could not start never ran (its launcher reported no pid): docker leaves such a
        // container Created, with the exit code and the error.
        d.State.Status = started || !exit.startError ? 'exited' : 'created';
        d.State.ExitCode = exit.code;
        d.State.OOMKilled = exit.oomKilled;
        if (d.State.Status === 'exited') d.State.FinishedAt = new Date().toISOString();
        if (exit.startError) d.State.Error = exit.startError;
        else delete d.State.Error;
      },
      { durable },
    );
    trace('exit recorded');
    return exit;
  } catch (e) {
    // A "running" write still in flight lands first: after removal it would bring the document back.
    await running?.catch(() => {});
    await updateDoc(
      store,
      id,
      (d) => {
        // Refused before anything ran (its user): Created, as docker leaves it.
        d.State.Status = e instanceof ContainerStartError ? 'created' : 'exited';
        // Who failed to start it: startDetached waits for its supervisor's verdict.
        d.State.Runner = process.pid;
        d.State.RunnerStart = runnerStart;
        d.State.ExitCode = 125;
        if (d.State.Status === 'exited') d.State.FinishedAt = new Date().toISOString();
        d.State.Error = (e as Error).message;
      },
      { durable },
    ).catch(() => {});
    throw e;
  } finally {
    // Not waited for (unless it published ports, which must be free when this returns): its helper's
    // exit takes tens of ms, and nothing here needs it gone.
    await discardNetwork(own);
    if (remove) {
      await removeContainer(store, id, { volumes: true }).catch(() => {});
      trace('removed');
    }
  }
}

/** The supervisor script, found through the package (the CLI itself may run from a bundle). */
export function supervisorPath(): string {
  const root = dirname(createRequire(import.meta.url).resolve('@tsbuild/containers/package.json'));
  return join(root, 'dist', 'src', 'supervisor.js');
}

/** A container that could not be started: the exit status docker gives (125, or its command's 126/127). */
export class ContainerStartError extends ContainerError {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'ContainerStartError';
  }
}

/** What a supervisor tells startDetached on its fd 3, one JSON line: running, or why it is not. */
export type StartOutcome = { running: true } | { running: false; code: number; error?: string };

/** The first line on `stream` (undefined at its end without one); the stream is let go of then. */
export function firstLine(stream: Readable): Promise<string | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const done = () => {
      stream.destroy();
      const nl = text.indexOf('\n');
      resolve(nl >= 0 ? text.slice(0, nl) : undefined);
    };
    stream.setEncoding('utf8');
    stream.on('data', (s: string) => {
      text += s;
      if (text.includes('\n')) done();
    });
    stream.on('end', done);
    stream.on('error', done);
  });
}

/**
 * Starts the container under a detached supervisor (its own session, output to the container's
 * log) and waits until it is running. Throws ContainerStartError if it could not be started: the
 * supervisor says so on a pipe (its fd 3), as the document of a `--rm` container is gone by then.
 */
export async function startDetached(store: Store, id: string): Promise<void> {
  const doc = await readDoc(store, id);
  if (!doc) throw new ContainerError(`No such container: ${id}`);
  await fsp.appendFile(doc.LogPath, '');
  const log = openSync(doc.LogPath, 'a');
  // Created until its supervisor runs it, not what an earlier run left.
  await updateDoc(store, id, (d) => {
    d.State = {
      Status: 'created',
      Detached: true,
      ...(d.State.VolatileBoot ? { VolatileBoot: d.State.VolatileBoot } : {}),
    };
  });
  const child = spawn(process.execPath, [supervisorPath(), store.root, id], {
    detached: true,
    stdio: ['ignore', log, log, 'pipe'],
  });
  closeSync(log);
  child.unref();
  const spawned = new Promise<never>((_, reject) =>
    child.on('error', (e) => reject(new ContainerError(`cannot start the supervisor of ${doc.Name}: ${e.message}`))),
  );
  spawned.catch(() => {});
  // Bounded: a supervisor that hangs before it tells (a stuck store lock, a launcher that never execs) is
  // said, not waited on forever; the container is then left to it, as its document says.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      (child.stdio[3] as Readable).destroy();
      reject(new ContainerError(`container ${doc.Name} did not start within 15 s; see ${doc.LogPath}`));
    }, StartTimeoutMs);
  });
  late.catch(() => {});
  let line: string | undefined;
  try {
    line = await Promise.race([firstLine(child.stdio[3] as Readable), spawned, late]);
  } finally {
    clearTimeout(timer);
  }
  startOutcome(line, doc.Name, doc.LogPath);
}

/** How long startDetached waits for its supervisor's word (it had 15 s before the fd 3 pipe, too). */
const StartTimeoutMs = 15_000;

/**
 * What startDetached makes of its supervisor's first line (undefined: it ended without one): returns
 * if the container runs, else throws. Not running without an error of its own (a stop racing the start)
 * is a failure too: `run -d` must not print the id and exit 0 for a container that never ran.
 */
export function startOutcome(line: string | undefined, name: string, logPath: string): void {
  if (line === undefined)
    throw new ContainerError(`the supervisor of ${name} ended before starting it; see ${logPath}`);
  let outcome: StartOutcome;
  try {
    outcome = JSON.parse(line) as StartOutcome;
  } catch {
    throw new ContainerError(`the supervisor of ${name} said "${line}", not whether ${name} runs; see ${logPath}`);
  }
  if (outcome.running) return;
  if (outcome.error !== undefined) throw new ContainerStartError(outcome.error, outcome.code);
  throw new ContainerStartError(
    `container ${name} ended before it was running (stopped?); see ${logPath}`,
    outcome.code || 125,
  );
}
