// A private dockerd for comparisons with BuildKit. It must change nothing the machine shares, so:
//   network   a bridge of its own (bridge.ts), --iptables/--ip6tables/--ip-masq/--ip-forward off: no
//             firewall rule, no sysctl, and docker0 (which --bridge=none would delete) left alone;
//   files     its own data root, exec root, pidfile, socket and an empty config file (not
//             /etc/docker/daemon.json); it runs in a mount namespace of its own where /run is a tmpfs
//             and /etc an overlay on a tmpfs, because dockerd writes /etc/docker/key.json and
//             /run/docker/plugins, BuildKit's runc /run/runc, whatever the flags say. Every mount it
//             makes stays in that namespace and goes with it;
//   cgroups   --cgroup-parent /<bridge name> (not /docker, which the machine's dockerd uses), removed
//             when it stops.
// stop() ends the daemon and its containerd, then deletes the bridge and the cgroups. A test process that
// dies without stop() takes the daemon with it (parent-death signal); the host guard reports the rest.
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { createBridge, sweepBridges } from './bridge.js';
import { have } from './skip.js';

// Debian's docker.io client (20.10) has BuildKit built in; a newer client found first on PATH
// would want the buildx plugin, which Debian 12 does not package.
const dockerCli = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

export interface Dockerd {
  host: string;
  /** The private bridge the daemon's default network uses. */
  bridge: string;
  docker(args: string[], env?: Record<string, string>): { code: number; stdout: string; stderr: string };
  stop(): Promise<void>;
}

// Runs as `sh -c SCRIPT sh DIR dockerd ARGS...` inside `unshare -m`: private mounts, then dockerd.
const isolate = [
  'set -e',
  'd=$1; shift',
  'mount -t tmpfs -o mode=0700 tsb-dockerd "$d/priv"',
  'mkdir "$d/priv/etc" "$d/priv/etc-work"',
  'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$d/priv/etc,workdir=$d/priv/etc-work" /etc',
  'mount -t tmpfs -o mode=0755 tsb-run /run',
  'exec "$@"',
].join('\n');

/**
 * Starts a private dockerd under `dir`. Returns why it cannot run here (not root, not installed):
 * the caller skips with that reason. Throws if it is there but does not come up, with its log.
 * `args`: more dockerd flags (e.g. `--storage-driver vfs`).
 */
export async function startDockerd(
  dir: string,
  opts: { timeoutMs?: number; args?: string[] } = {},
): Promise<Dockerd | string> {
  if (process.getuid?.() !== 0) return 'a private dockerd needs root';
  for (const cmd of ['dockerd', dockerCli, 'ip', 'unshare', 'setpriv']) if (!have(cmd)) return `${cmd} not installed`;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const sock = join(dir, 'docker.sock');
  const host = `unix://${sock}`;
  const logFile = join(dir, 'dockerd.log');
  mkdirSync(join(dir, 'priv'), { recursive: true });
  writeFileSync(join(dir, 'daemon.json'), '{}\n');
  // What a killed test process left: its bridge, and the daemon's cgroups named after it.
  for (const stale of sweepBridges()) removeCgroups(stale);
  const bridge = createBridge();
  const cgroupParent = `/${bridge.name}`;
  const log = openSync(logFile, 'a');
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        isolate,
        'sh',
        dir,
        // If the test process dies without stop(), dockerd is told to shut down rather than left running.
        'setpriv',
        '--pdeathsig',
        'TERM',
        'dockerd',
        '--config-file',
        join(dir, 'daemon.json'),
        '--data-root',
        join(dir, 'data'),
        '--exec-root',
        join(dir, 'exec'),
        '--pidfile',
        join(dir, 'pid'),
        '--host',
        host,
        '--bridge',
        bridge.name,
        '--iptables=false',
        '--ip6tables=false',
        '--ip-masq=false',
        '--ip-forward=false',
        '--cgroup-parent',
        cgroupParent,
        ...(opts.args ?? []),
      ],
      { stdio: ['ignore', log, log], detached: true },
    );
  } catch (e) {
    bridge.remove();
    throw e;
  } finally {
    closeSync(log);
  }
  let failedToSpawn = '';
  const exited = new Promise<void>((r) => {
    child.once('exit', () => r());
    child.once('error', (e) => {
      failedToSpawn = e.message;
      r();
    });
  });

  const running = () => !failedToSpawn && child.exitCode === null && child.signalCode === null;

  const docker = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(dockerCli, ['-H', host, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      maxBuffer: 64 << 20,
    });
    return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (running()) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000).unref())]);
    }
    // dockerd stops its containerd on SIGTERM; whatever of its process group is still there goes now.
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // ESRCH: nothing left
    }
    await exited;
    bridge.remove();
    removeCgroups(bridge.name);
  };

  const deadline = Date.now() + timeoutMs;
  let up = false;
  while (!up && running() && Date.now() < deadline) {
    up = await ping(sock);
    if (!up) await Promise.race([exited, new Promise((r) => setTimeout(r, 250))]);
  }
  if (up) return { host, bridge: bridge.name, docker, stop };
  const how = failedToSpawn
    ? `could not be started (${failedToSpawn})`
    : !running()
      ? `exited (${child.exitCode ?? child.signalCode})`
      : `did not answer on ${sock} within ${timeoutMs / 1000} s`;
  await stop();
  throw new Error(`private dockerd ${how}; the end of ${logFile}:\n${tail(logFile)}`);
}

/** GET /_ping on the daemon's socket: true once it answers OK. */
function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch (e) {
    return `(no log: ${(e as Error).message})`;
  }
}

/** Removes the daemon's cgroup parent in every hierarchy (v1 controllers or the v2 tree), deepest first. */
function removeCgroups(name: string): void {
  const roots = ['/sys/fs/cgroup'];
  try {
    for (const c of readdirSync('/sys/fs/cgroup')) roots.push(join('/sys/fs/cgroup', c));
  } catch {
    return;
  }
  const left: string[] = [];
  const rm = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rm(join(dir, e.name));
    try {
      rmdirSync(dir);
    } catch (e) {
      left.push(`${dir}: ${(e as NodeJS.ErrnoException).code}`);
    }
  };
  for (const root of roots) {
    const dir = join(root, name);
    if (existsSync(join(dir, 'cgroup.procs'))) rm(dir);
  }
  if (left.length) throw new Error(`private dockerd: cgroups left behind:\n${left.join('\n')}`);
}
