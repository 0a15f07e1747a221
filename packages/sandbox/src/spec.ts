// Serialises a run for the launcher: NUL-terminated "key=value" tokens, the simplest thing C can
// parse safely (no quoting, no nesting). Mount fields follow their "mount=" token. The last token is
// "end=1" (ended()): the launcher refuses a spec without it, cut short by a writer killed mid-write.
import { closeSync, constants as fsc, openSync, writeSync } from 'node:fs';
import type { Launched, LauncherOutcome, Mount, ProcessSpec, Rlimit } from './types.js';
import { SandboxError } from './errors.js';
import type { Readable } from 'node:stream';

/** The command and who runs it: what a run and an exec tell the launcher alike. */
export interface LauncherProcess {
  argv: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  groups: number[];
  tty?: boolean;
}

/** A run's or an exec's ProcessSpec as the launcher takes it: the one place its fields are listed. */
export function launcherProcess(s: ProcessSpec): LauncherProcess {
  return { argv: s.argv, env: s.env, cwd: s.cwd, uid: s.uid, gid: s.gid, groups: s.additionalGids ?? [], tty: s.tty };
}

export interface LauncherSpec extends LauncherProcess {
  lowerdirs: string[];
  upperdir: string;
  workdir: string;
  /** Overlay `volatile`: no sync of the upper filesystem at unmount (see RootSpec.volatile). */
  volatile?: boolean;
  /** Host directory the overlay is mounted on inside the run's private mount namespace. */
  rootdir: string;
  hostname: string;
  /** 'none' makes a namespace with lo only; 'host' and 'private' (joined with netnsPid) make none. */
  network: 'host' | 'none' | 'private';
  /** Take CAP_NET_RAW from the command (see drop_privileges in launcher.c). */
  noNetRaw?: boolean;
  hostsFile: string;
  resolvFile: string;
  hostnameFile: string;
  /** Targets already resolved inside the root (see initlayer.ts). */
  mounts: Mount[];
  /** cgroup.procs (or v1 `tasks`) files the launcher writes itself ("0") into before it forks. */
  cgroupProcs: string[];
  /** The run's cgroup directories shown read-only at /sys/fs/cgroup/NAME ('' = /sys/fs/cgroup itself). */
  cgroupMounts?: { name: string; dir: string }[];
  /** cgroup v2: attach a device program allowing `deviceRules` ("c 1:3 rwm") to this cgroup first. */
  deviceCgroup?: string;
  deviceRules?: readonly string[];
  /** /dev stays writable (as runc's): only where the device allowlist (a cgroup) or a user namespace guards it. */
  devWritable?: boolean;
  /** Kind of each mount's target (parallel to `mounts`): needed for targets the launcher creates in /dev. */
  mountKinds?: ('dir' | 'file')[];
  /** A reaping, signal-forwarding init as PID 1 in front of the command (see SandboxSpec.init). */
  init?: boolean;
  /** Make the cwd inside the root when it is missing (see SandboxSpec.makeCwd). */
  makeCwd?: boolean;
  /** Join the network namespace of this host pid instead of `network`. */
  netnsPid?: number;
  /** /dev/shm size in bytes (launcher default: 64 MiB). */
  shmSize?: number;
  rlimits?: Rlimit[];
  /** The caller runs in a user namespace (see userns.ts): overlay userxattr, bound device nodes. */
  rootless?: boolean;
}

/** exec mode: run a command inside the running container whose init has host pid `pid`. */
export interface LauncherExecSpec extends LauncherProcess {
  pid: number;
  cgroupProcs: string[];
  noNetRaw?: boolean;
}

export function encodeExecSpec(s: LauncherExecSpec): Buffer {
  const t: string[] = [token('exec', s.pid)];
  pushProcess(t, s);
  for (const c of s.cgroupProcs) t.push(token('cgroup', c));
  if (s.tty) t.push(token('tty', 1));
  if (s.noNetRaw) t.push(token('netraw', 0));
  return ended(t);
}

/** netholder mode: a network namespace held open, `helper` (pasta's argv) connecting it (see network.ts). */
export function encodeHolderSpec(helper: string[], rootless = false, spawner = false): Buffer {
  const t = [token('netholder', 1), ...helper.map((a) => token('helper', a))];
  if (rootless) t.push(token('rootless', 1));
  if (spawner) t.push(token('spawner', 1));
  return ended(t);
}

/** O_TMPFILE (Linux >= 3.11; not in fs.constants): an unnamed file in a directory, gone with its last fd. */
const O_TMPFILE = 0o20000000 | fsc.O_DIRECTORY;

/**
 * The launcher reads its spec from fd 3 up to EOF. Through a pipe, EOF comes when Node shuts the pipe
 * down, which it does in its event loop, so not before the synchronous work that follows the spawn
 * yields: the network holder, started ahead while the CLI opens the store and creates the container,
 * waited 5-10 ms for it. An unnamed file in `dir` holding the spec (written at offset 0, which the
 * launcher's fd shares) is at EOF as soon as it is read: pass it as the child's fd 3 and close it once
 * spawned. Undefined where the filesystem has no O_TMPFILE (then a pipe it is).
 */
export function specFile(dir: string, spec: Buffer): number | undefined {
  let fd: number;
  try {
    fd = openSync(dir, O_TMPFILE | fsc.O_RDWR, 0o600);
  } catch {
    return undefined;
  }
  try {
    for (let off = 0; off < spec.length;) off += writeSync(fd, spec, off, spec.length - off, off);
    return fd;
  } catch {
    closeSync(fd);
    return undefined;
  }
}

/** The tokens and the closing "end=1" that says the spec is whole (launcher.c parse_spec). */
function ended(tokens: string[]): Buffer {
  return Buffer.from(tokens.join('') + token('end', 1));
}

/** Appends the command's tokens, the same in run and exec mode (tty goes with the other flags, later). */
function pushProcess(t: string[], s: LauncherProcess): void {
  for (const a of s.argv) t.push(token('arg', a));
  for (const e of s.env) t.push(token('env', e));
  t.push(token('cwd', s.cwd), token('uid', s.uid), token('gid', s.gid));
  for (const g of s.groups) t.push(token('group', g));
}

function token(key: string, value: string | number): string {
  const v = String(value);
  if (v.includes('\0')) throw new Error(`sandbox: ${key} must not contain a NUL byte: ${JSON.stringify(v)}`);
  return `${key}=${v}\0`;
}

export function encodeSpec(s: LauncherSpec): Buffer {
  const t: string[] = [];
  for (const l of s.lowerdirs) t.push(token('lower', l));
  t.push(token('upper', s.upperdir), token('work', s.workdir), token('rootdir', s.rootdir));
  if (s.volatile) t.push(token('volatile', 1));
  pushProcess(t, s);
  t.push(token('hostname', s.hostname), token('net', s.network));
  t.push(token('hosts', s.hostsFile), token('resolv', s.resolvFile), token('hostnamefile', s.hostnameFile));
  for (const c of s.cgroupProcs) t.push(token('cgroup', c));
  for (const m of s.cgroupMounts ?? []) t.push(token('cgmount', `${m.name}:${m.dir}`));
  if (s.deviceCgroup) {
    t.push(token('devcgroup', s.deviceCgroup));
    for (const r of s.deviceRules ?? []) t.push(token('devallow', r));
  }
  if (s.devWritable) t.push(token('devrw', 1));
  if (s.tty) t.push(token('tty', 1));
  if (s.init) t.push(token('init', 1));
  if (s.makeCwd) t.push(token('mkcwd', 1));
  if (s.netnsPid) t.push(token('netns', s.netnsPid));
  if (s.noNetRaw) t.push(token('netraw', 0));
  if (s.shmSize !== undefined) t.push(token('shmsize', Math.floor(s.shmSize)));
  // "RESOURCE:SOFT:HARD"; -1 (unlimited) is sent as "inf", the launcher's numbers being unsigned.
  const lim = (v: number) => (v < 0 ? 'inf' : String(Math.floor(v)));
  for (const r of s.rlimits ?? []) t.push(token('rlimit', `${r.resource}:${lim(r.soft)}:${lim(r.hard)}`));
  if (s.rootless) t.push(token('rootless', 1));
  s.mounts.forEach((m, i) => {
    t.push(token('mount', m.type), token('mtarget', m.target), token('mro', m.readonly ? 1 : 0));
    if (s.mountKinds?.[i]) t.push(token('mkind', s.mountKinds[i]));
    if (m.type === 'bind') t.push(token('msource', m.source ?? ''));
    if (m.type === 'bind' && m.nonrecursive) t.push(token('mnorec', 1));
    if (m.size !== undefined) t.push(token('msize', Math.floor(m.size)));
    if (m.mode !== undefined) t.push(token('mmode', (m.mode & 0o7777).toString(8)));
    if (m.noexec) t.push(token('mnoexec', 1));
  });
  return ended(t);
}

export type { LauncherOutcome };

/**
 * What a launch came to once its status fd ended: the outcome it reported; killed by the caller's abort before it
 * could report; else an error saying `how` the launcher ended and what it wrote.
 */
export function launchEnd(status: string, aborted: boolean, how: string): Launched {
  const outcome = parseOutcome(status);
  if (outcome) return { outcome, aborted };
  if (aborted) return { outcome: { kind: 'signal', signal: 9 }, aborted };
  throw new SandboxError(`the launcher ended without a report (${how})${status ? ': ' + status.trim() : ''}`);
}

/**
 * Collects what a launcher writes on its status fd, and reports its container's first process once
 * (`pid N`, the onStart of a run or an exec); the text is read at the fd's end (parseOutcome).
 */
export function collectStatus(stream: Readable, onStart?: (pid: number) => void): () => string {
  let status = '';
  let started = false;
  stream.setEncoding('utf8');
  stream.on('data', (s: string) => {
    status += s;
    if (!started && onStart) {
      const m = status.match(/^pid (\d+)$/m);
      if (m) {
        started = true;
        onStart(Number(m[1]));
      }
    }
  });
  return () => status;
}

/**
 * Parses the first outcome line the launcher wrote on fd 4 ("pid N" lines skipped, and a spawner
 * holder's "launched N"); undefined if none.
 */
export function parseOutcome(text: string): LauncherOutcome | undefined {
  const line = text.split('\n').filter((l) => !/^(?:pid|launched) \d+$/.test(l))[0] ?? '';
  let m: RegExpMatchArray | null;
  if ((m = line.match(/^exit (\d+)$/))) return { kind: 'exit', code: Number(m[1]) };
  if ((m = line.match(/^signal (\d+)$/))) return { kind: 'signal', signal: Number(m[1]) };
  if ((m = line.match(/^error (\d+) (.*)$/))) return { kind: 'error', code: Number(m[1]), message: m[2] };
  if ((m = line.match(/^setup (.*)$/))) return { kind: 'setup', message: m[1] };
  return undefined;
}
