// What a caller asks of the sandbox and what it hears back. Knows nothing of images:
// the root is just a stack of directories.
import type { Writable, Readable } from 'node:stream';

export interface Mount {
  type: 'bind' | 'tmpfs';
  /** Host path (bind). */
  source?: string;
  /** Absolute path inside the root; created in the init layer if missing, never in the upperdir. */
  target: string;
  readonly?: boolean;
  /** bind: the source alone, without the mounts beneath it (docker's bind-nonrecursive); default recursive. */
  nonrecursive?: boolean;
  /** tmpfs size in bytes. */
  size?: number;
  /** tmpfs mode of its root directory (default 01777). */
  mode?: number;
  /** tmpfs: nothing on it can be executed (docker's run --mount type=tmpfs is noexec). */
  noexec?: boolean;
}

export interface Limits {
  cpuPeriod?: number;
  cpuQuota?: number;
  memoryBytes?: number;
  pidsLimit?: number;
}

/** A resource limit (setrlimit) for the command, as `docker run --ulimit` sets one. */
export interface Rlimit {
  /** RLIMIT_* number of Linux (see rlimitNumbers). */
  resource: number;
  /** Values; -1 is unlimited (RLIM_INFINITY). */
  soft: number;
  hard: number;
}

/** docker's `--ulimit` names and Linux's RLIMIT_* numbers (asm-generic/resource.h). */
export const rlimitNumbers: Readonly<Record<string, number>> = {
  cpu: 0,
  fsize: 1,
  data: 2,
  stack: 3,
  core: 4,
  rss: 5,
  nproc: 6,
  nofile: 7,
  memlock: 8,
  as: 9,
  locks: 10,
  sigpending: 11,
  msgqueue: 12,
  nice: 13,
  rtprio: 14,
  rttime: 15,
};

export interface RootSpec {
  /** Read-only layers, top first (host paths). May be empty (scratch). */
  lowerdirs: string[];
  /** Where the run's changes land; with `workdir` on the same filesystem. */
  upperdir: string;
  workdir: string;
  /**
   * Skip the overlay's sync of the upper filesystem at unmount (overlay's `volatile`). For a
   * one-shot run whose upperdir and workdir are consumed and then removed, as a build step's are:
   * the kernel leaves a marker in the workdir that makes a second mount of the same pair fail.
   */
  volatile?: boolean;
}

/** The process a sandbox runs, or that `exec()` starts inside a running one. */
export interface ProcessSpec {
  argv: string[];
  /** K=V; PATH inside it is used to find argv[0]. */
  env: string[];
  /** Absolute, inside the root. */
  cwd: string;
  uid: number;
  gid: number;
  additionalGids?: number[];
  /** A stream (piped through Node), 'inherit' (the caller's own fd), an open fd number, or 'ignore'. */
  stdin?: Readable | 'ignore' | 'inherit' | number;
  stdout?: Writable | 'inherit' | number;
  stderr?: Writable | 'inherit' | number;
  /**
   * Give the command a pseudo-terminal (from the container's own devpts) as stdin/stdout/stderr.
   * The launcher relays it to stdin/stdout; when stdin is a terminal ('inherit') it is put in raw
   * mode for the run and window-size changes follow it, as with `docker run -it`.
   */
  tty?: boolean;
  /**
   * Start the launcher in a session of its own, so that a terminal's Ctrl-C reaches the command only through the
   * caller (which may forward it).
   */
  newSession?: boolean;
  /**
   * Called once with a host pid: for run() the sandbox's PID 1 (the command, or the init with `init`), for
   * exec() the command. A command's once it has exec'd (never if it could not start; its output may come
   * first), an init's as soon as it exists.
   */
  onStart?: (pid: number) => void;
  /** Aborting kills what was started and tears it down; the call then rejects with an AbortError. */
  signal?: AbortSignal;
}

export interface SandboxSpec extends ProcessSpec {
  root: RootSpec;
  hostname?: string;
  /**
   * 'private': a network namespace of its own with outbound connectivity through pasta (see
   * network.ts), the default of builds and containers; 'host' shares the host's network namespace;
   * 'none' gets a new one with only lo up. The command keeps CAP_NET_RAW only with 'none'.
   */
  network: 'host' | 'none' | 'private';
  /** With 'private': join this network (shared by several runs) instead of making one for the run. */
  netns?: PrivateNetwork;
  /** With 'private' and no `netns`: ports of the host forwarded into the run's own network. */
  ports?: PortMapping[];
  /**
   * Join the network namespace of this host pid (another sandbox's PID 1) instead; `network` then
   * only picks the default hosts and resolv.conf files and whether CAP_NET_RAW is kept.
   */
  netnsPid?: number;
  /** Contents of the per-run /etc/hosts and /etc/resolv.conf; defaults derive from the host. */
  hosts?: string;
  /** Entries appended to /etc/hosts (the default one, or `hosts`), as `--add-host HOST:IP` makes them. */
  extraHosts?: { host: string; ip: string }[];
  resolvConf?: string;
  mounts?: Mount[];
  limits?: Limits;
  /** Size of the run's /dev/shm tmpfs in bytes (default 64 MiB, as docker's). */
  shmSize?: number;
  /** setrlimit for the command (inherited by what it starts). */
  rlimits?: Rlimit[];
  /**
   * Where per-run scratch state lives (init layer, hosts files). Default: see defaultStateDir() (a tmpfs where there
   * is one).
   */
  stateDir?: string;
  /**
   * Put a minimal init in front of the command, as `docker run --init` does: it is PID 1, reaps every
   * orphan, forwards signals to the command and exits with its status. Without it the command itself
   * is PID 1 (as in Docker and BuildKit): it gets only the signals it handles (SIGKILL always) and
   * reaps only the children it waits for.
   */
  init?: boolean;
  /**
   * Make `cwd` (root's, 0755, in the upperdir) when the root lacks it, as `docker run -w` does. A build step's
   * WORKDIR is made by its own step instead, and exec's is never made (docker exec -w fails there too).
   */
  makeCwd?: boolean;
  /** The run can be frozen with freezeSandbox() (cgroup v1 joins the freezer hierarchy for it; v2 always can). */
  freezable?: boolean;
}

export interface Exit {
  /** Exit code of the command, or 128+signal when killed, as a shell reports it. */
  code: number;
  /** Name of the killing signal, if it died of one. */
  signal?: string;
  oomKilled: boolean;
  /** Set when the sandbox could not start the command (not found, not executable, bad cwd). */
  startError?: string;
  /** What the run consumed, measured by its cgroup. */
  usage?: Usage;
}

export interface Usage {
  /** CPU time of every process of the run (user + system), if the host's cgroups measure it. */
  cpuNanos?: number;
  /** Wall-clock time from starting the launcher to its end. */
  wallMs: number;
}

/** A command to run inside a running sandbox (see `exec()`). */
export interface ExecSpec extends ProcessSpec {
  /** Host pid of the running sandbox's PID 1 (what `onStart` reported). */
  pid: number;
  /** Keep CAP_NET_RAW: only for a sandbox whose network is 'none' (see SandboxSpec.network). */
  keepNetRaw?: boolean;
}

/** A port of the host forwarded into the network (`tsbuild run -p [IP:]HOST:CTR[/PROTO]`). */
export interface PortMapping {
  /** IPv4 address of the host to listen on; all of them when absent. */
  hostIp?: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

/** The addresses inside a private network (the namespace's own view; the host never sees them). */
export interface AddressPlan {
  /** The namespace's address (eth0), with a /24. */
  address: string;
  gateway: string;
  /** The helper's DNS forwarder: queries sent here go to the host's first nameserver. */
  dns: string;
}

/** How the launcher ended, from what it wrote on its fd 4 (spec.ts parseOutcome). */
export type LauncherOutcome =
  | { kind: 'exit'; code: number }
  | { kind: 'signal'; signal: number }
  | { kind: 'error'; code: number; message: string }
  | { kind: 'setup'; message: string };

/** The part of a process spec about the launcher's own process: its stdio, session and life. */
export type LaunchIO = Pick<ProcessSpec, 'stdin' | 'stdout' | 'stderr' | 'signal' | 'onStart' | 'newSession' | 'tty'>;

/** What a launch reports: the launcher's outcome, and whether it was aborted (LaunchIO.signal). */
export interface Launched {
  outcome: LauncherOutcome;
  aborted: boolean;
}

export interface PrivateNetwork {
  /** Host pid of the process holding the namespace: a run joins it with SandboxSpec.netns. */
  readonly pid: number;
  readonly plan: AddressPlan;
  /** /etc/resolv.conf for runs in this network. */
  readonly resolvConf: string;
  /** Why lookups go to public nameservers, when the host's cannot be used (for the user to see). */
  readonly dnsWarning?: string;
  /**
   * Ends the network (the namespace goes when its last run has ended). Idempotent. Resolves once
   * the helper has exited. With `wait: false`, at once unless the network publishes ports (those
   * must be free when it resolves, to be published again): the holder is told to end and takes the
   * helper with it, without this process waiting for them (the helper's exit unregisters its tap
   * device: tens of ms) nor staying alive for them.
   */
  close(opts?: { wait?: boolean }): Promise<void>;
  /**
   * Starts the launcher of the one container this network was started for (NetworkOptions.launcherStdio)
   * with `encoded` as its spec, forked by the holder rather than by this process: as run.ts launch() does
   * otherwise. Undefined (launch it yourself) when the network cannot: none was asked for, it was used
   * already, the network has ended, or `io` is not what the holder was given (a tty, other stdio, no new
   * session).
   */
  launch?(encoded: Buffer, io: LaunchIO): Promise<Launched> | undefined;
}
