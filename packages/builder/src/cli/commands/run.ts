// `tsbuild run`: create a container (state under <store>/containers) and run it, in the foreground
// (this process is its runner, signals are forwarded to it, the exit status is the container's) or
// detached (-d: a supervisor process runs it, output goes to its log). Errors of tsbuild itself
// exit 125; a command that cannot run 126, one that is not found 127 (as docker run).
import { bool, list, parseArgs, str, type Parsed } from '../args.js';
import { flagsOf } from '../flags.js';
import { UsageError } from '../../errors.js';
import { parseSize } from '../../options.js';
import { openStore } from '../root.js';
import { emulationProblem, isNative } from '../../solver/emulation.js';
import { formatPlatform, hostPlatform } from '@tsbuild/layerstore';
import { dnsChoice, type Limits, type PortMapping } from '@tsbuild/sandbox';
import {
  ContainerError,
  ContainerStartError,
  createContainer,
  createToRun,
  discardNetwork,
  networkAhead,
  runContainer,
  startDetached,
  type CreateOptions,
} from '@tsbuild/containers';
import { errorLine, report } from '../report.js';
import { trace } from '../../trace.js';

export const runFlags = flagsOf('run');

function int(p: Parsed, name: string, min: number): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name}: "${v}" is not an integer >= ${min}`);
  return Number(v);
}

export function limitsFrom(p: Parsed): Limits {
  const limits: Limits = {};
  const period = int(p, 'cpu-period', 1000);
  const quota = int(p, 'cpu-quota', 1000);
  const cpus = str(p, 'cpus');
  if (cpus !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(cpus) || Number(cpus) <= 0)
      throw new UsageError(`--cpus: "${cpus}" is not a positive number`);
    if (quota !== undefined) throw new UsageError('--cpus and --cpu-quota cannot be used together');
    limits.cpuPeriod = period ?? 100000;
    limits.cpuQuota = Math.round(Number(cpus) * limits.cpuPeriod);
  } else {
    if (period !== undefined) limits.cpuPeriod = period;
    if (quota !== undefined) limits.cpuQuota = quota;
  }
  const mem = str(p, 'memory');
  if (mem !== undefined) {
    limits.memoryBytes = parseSize(mem, '--memory');
    if (limits.memoryBytes < 6 << 20) throw new UsageError('--memory: the minimum is 6m');
  }
  const pids = int(p, 'pids-limit', -1);
  if (pids !== undefined && pids > 0) limits.pidsLimit = pids;
  return limits;
}

/** `-p [IP:]HOST:CTR[/tcp|/udp]`, as docker run takes it (no ranges, no random host port). */
export function parsePublish(spec: string): PortMapping {
  const m = spec.match(/^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d+):(\d+)(?:\/(tcp|udp))?$/);
  const bad = (why: string) => new UsageError(`-p ${spec}: ${why} (use [IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp])`);
  if (!m) throw bad(/^\[|::/.test(spec) ? 'only IPv4 host addresses are supported' : 'not a port mapping');
  const [, ip, host, ctr, proto] = m;
  if (ip && ip.split('.').some((o) => Number(o) > 255)) throw bad(`"${ip}" is not an IPv4 address`);
  for (const p of [host, ctr]) if (Number(p) < 1 || Number(p) > 65535) throw bad(`port ${p} is not in 1-65535`);
  return {
    hostIp: ip,
    hostPort: Number(host),
    containerPort: Number(ctr),
    protocol: (proto ?? 'tcp') as 'tcp' | 'udp',
  };
}

/**
 * A step of a foreground run, for TSBUILD_TRACE (`run: flags read`, ..., `run: removed`). For tests
 * (test/run-rm.test.ts): with TSBUILD_TEST_RUN_STOP=STEP this process stops itself (SIGSTOP) right
 * there, so that a test kills it at exactly that point of the sequence, not about there.
 */
function step(what: string): void {
  trace(`run: ${what}`);
  if (process.env.TSBUILD_TEST_RUN_STOP === what) process.kill(process.pid, 'SIGSTOP');
}

const forwarded = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

/** The container's exit status is ours; a command that could not start says why first. */
export function exitStatus(exit: { code: number; startError?: string }): number {
  if (exit.startError) process.stderr.write(errorLine(exit.startError));
  return exit.code;
}

/** tsbuild's own failure around a container: docker's 125 (report.ts's `container` contract). */
export function ownError(e: unknown, command = 'run'): Promise<number> {
  return report(e, command, 'container');
}

/** How a container's process in the foreground is wired to this process (see attached). */
export interface AttachedIO {
  stdin: 'inherit' | 'ignore';
  stdout: 'inherit';
  stderr: 'inherit';
  newSession: boolean;
  onStart: (pid: number) => void;
}

/**
 * Runs a container's process (run, exec, start -a) in the foreground: fn starts it with `io`, this process's
 * stdout and stderr, its stdin when `stdin`, and in a session of its own without a tty (a terminal's Ctrl-C
 * reaches it once: through us). Meanwhile this process's signals go to the pid `io.onStart` is told.
 */
export function attached<T>(o: { stdin: boolean; tty: boolean }, fn: (io: AttachedIO) => Promise<T>): Promise<T> {
  let pid: number | undefined;
  const io: AttachedIO = {
    stdin: o.stdin ? 'inherit' : 'ignore',
    stdout: 'inherit',
    stderr: 'inherit',
    newSession: !o.tty,
    onStart: (x) => {
      pid = x;
    },
  };
  return withSignalsForwarded(
    () => pid,
    () => fn(io),
  );
}

/**
 * While a container runs in the foreground, this process's signals go to it (docker's sig-proxy)
 * instead of aborting tsbuild; `pid()` is the container's init, which passes them on.
 */
async function withSignalsForwarded<T>(pid: () => number | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = new Map(forwarded.map((s) => [s, process.listeners(s)]));
  for (const s of forwarded) process.removeAllListeners(s);
  const handler = (s: NodeJS.Signals) => {
    const p = pid();
    if (p)
      try {
        process.kill(p, s);
      } catch {
        /* gone */
      }
  };
  for (const s of forwarded) process.on(s, handler);
  try {
    return await fn();
  } finally {
    for (const s of forwarded) {
      process.off(s, handler);
      for (const l of saved.get(s) ?? []) process.on(s, l as (...a: unknown[]) => void);
    }
  }
}

/**
 * -w, for run and exec: docker refuses a relative one (run took it from /, exec failed naming the sandbox),
 * and takes an empty one as not given (the image's or the container's own).
 */
export function workdirFlag(p: Parsed): string | undefined {
  const w = str(p, 'workdir');
  if (w === '') return undefined;
  if (w !== undefined && !w.startsWith('/')) throw new UsageError(`-w: "${w}" is not an absolute path`);
  return w;
}

export async function runCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, runFlags, { stopAtFirstPositional: true });
  const [ref, ...cmd] = p.positionals;
  if (!ref) throw new UsageError('"tsbuild run" requires at least 1 argument: IMAGE [COMMAND] [ARG...]');
  const network = str(p, 'network') ?? 'default';
  if (!['default', 'none', 'host', 'bridge'].includes(network) && !/^container:.+/.test(network))
    throw new UsageError(`--network: "${network}" is not one of default, none, host, container:NAME`);
  const ports = list(p, 'publish').map(parsePublish);
  if (ports.length && !['default', 'bridge'].includes(network))
    throw new UsageError(`-p: ports can only be published from the default network, not --network ${network}`);
  const limits = limitsFrom(p);
  const workdir = workdirFlag(p);
  const detach = bool(p, 'detach');
  if (detach && bool(p, 'interactive')) throw new UsageError('-d and -i cannot be used together (there is no attach)');
  // In the foreground this process is the runner: its network starts now, alongside everything
  // below (a detached container's supervisor starts its own).
  // Without a tty the container's stdio is known now: its launcher is forked by the network's holder.
  const tty = bool(p, 'tty');
  const stdio = tty
    ? undefined
    : ({ stdin: bool(p, 'interactive') ? 'inherit' : 'ignore', stdout: 'inherit', stderr: 'inherit' } as const);
  const ahead = detach ? undefined : networkAhead(network === 'bridge' ? 'default' : network, ports, stdio);
  let handedOver = false;
  try {
    step('flags read');
    const store = await openStore(str(p, 'root'), 'run');
    const image = await store.images.get(ref);
    if (!image) throw new ContainerError(`Unable to find image '${ref}' in the store (${store.root})`);
    // An image for another platform runs under QEMU user emulation (binfmt_misc), or says why it cannot.
    const { os, architecture, variant } = image.config;
    const platform = { os, architecture, ...(variant ? { variant } : {}) };
    const cannot = isNative(platform, hostPlatform()) ? undefined : emulationProblem(platform);
    if (cannot) throw new ContainerError(`image '${ref}' is for ${formatPlatform(platform)}: ${cannot}`);
    step('image read');
    const opts: CreateOptions = {
      ref,
      image,
      cmd,
      entrypoint: str(p, 'entrypoint'),
      name: str(p, 'name'),
      env: list(p, 'env'),
      envFiles: list(p, 'env-file'),
      workdir,
      user: str(p, 'user'),
      volumes: list(p, 'volume'),
      mounts: list(p, 'mount'),
      network: network === 'bridge' ? 'default' : network,
      ports,
      hostname: str(p, 'hostname'),
      tty: bool(p, 'tty'),
      interactive: bool(p, 'interactive'),
      limits,
      autoRemove: bool(p, 'rm'),
      init: bool(p, 'init'),
    };
    // In the foreground this process runs it next: createToRun leaves its document's fsyncs to runContainer.
    const { doc, synced, root } = detach
      ? { doc: await createContainer(store, opts), synced: undefined, root: undefined }
      : await createToRun(store, opts);
    step('container created');
    // Said here, where the user sees it (the network itself started above, or in the supervisor with -d).
    const dnsWarning = ['default', 'bridge'].includes(network) ? dnsChoice().warning : undefined;
    if (dnsWarning) process.stderr.write(`WARNING: ${dnsWarning}\n`);
    if (detach) {
      try {
        await startDetached(store, doc.Id);
      } catch (e) {
        if (!(e instanceof ContainerStartError)) throw e;
        // As docker run -d: the container exists (Created, or removed with --rm), its id is said, then why
        // it did not start, with its status (125, or 126/127 for a command that could not run).
        process.stdout.write(doc.Id + '\n');
        process.stderr.write(errorLine(e.message));
        return e.exitCode;
      }
      process.stdout.write(doc.Id + '\n');
      return 0;
    }
    handedOver = true;
    const exit = await attached({ stdin: bool(p, 'interactive'), tty }, (io) =>
      runContainer(store, doc.Id, { ...io, network: ahead, synced, root, image, trace: step }),
    );
    return exitStatus(exit);
  } catch (e) {
    return ownError(e);
  } finally {
    if (!handedOver) await discardNetwork(ahead);
  }
}
