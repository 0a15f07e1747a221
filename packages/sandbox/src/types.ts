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
  /** tmpfs size in bytes. */
  size?: number;
}

export interface Limits {
  cpuPeriod?: number;
  cpuQuota?: number;
  memoryBytes?: number;
  pidsLimit?: number;
}

export interface RootSpec {
  /** Read-only layers, top first (host paths). May be empty (scratch). */
  lowerdirs: string[];
  /** Where the run's changes land; with `workdir` on the same filesystem. */
  upperdir: string;
  workdir: string;
}

export interface SandboxSpec {
  root: RootSpec;
  argv: string[];
  /** K=V; PATH inside it is used to find argv[0]. */
  env: string[];
  /** Absolute, inside the root. */
  cwd: string;
  uid: number;
  gid: number;
  additionalGids?: number[];
  hostname?: string;
  /** 'host' shares the host's network namespace; 'none' gets a new one with only lo up. */
  network: 'host' | 'none';
  /** Contents of the per-run /etc/hosts and /etc/resolv.conf; defaults derive from the host. */
  hosts?: string;
  resolvConf?: string;
  mounts?: Mount[];
  limits?: Limits;
  stdin?: Readable | 'ignore';
  stdout?: Writable;
  stderr?: Writable;
  tty?: boolean;
  /** Aborting kills everything in the sandbox and tears it down; run() then rejects with an AbortError. */
  signal?: AbortSignal;
  /** Where per-run scratch state lives (init layer, hosts files). Default /run/tsbuild-sandbox. */
  stateDir?: string;
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
