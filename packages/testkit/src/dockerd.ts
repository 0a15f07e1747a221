// A private dockerd for comparisons with BuildKit: its own data root and socket, no iptables,
// no bridge, stopped (and its mounts removed) when the test ends.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { existsSync } from 'node:fs';

// Debian's docker.io client (20.10) has BuildKit built in; a newer client found first on PATH
// would want the buildx plugin, which Debian 12 does not package.
const dockerCli = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

export interface Dockerd {
  host: string;
  docker(args: string[], env?: Record<string, string>): { code: number; stdout: string; stderr: string };
  stop(): Promise<void>;
}

/**
 * Starts dockerd, or returns why it could not (the caller prints that and skips). `args`: more dockerd
 * flags (e.g. `--storage-driver vfs`).
 */
export async function startDockerd(dir: string, opts: { args?: string[] } = {}): Promise<Dockerd | string> {
  if (spawnSync('sh', ['-c', 'command -v dockerd && command -v docker']).status !== 0) return 'dockerd/docker not installed';
  const sock = join(dir, 'docker.sock');
  const host = `unix://${sock}`;
  const child = spawn('dockerd', ['--data-root', join(dir, 'data'), '--host', host, '--pidfile', join(dir, 'pid'), '--exec-root', join(dir, 'exec'), '--iptables=false', '--bridge=none', ...(opts.args ?? [])], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (b) => (log = (log + b).slice(-4000)));
  const docker = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(dockerCli, ['-H', host, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
    return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  };
  const stop = async () => {
    if (child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 15_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    spawnSync('sh', ['-c', `grep -o ' ${dir}/[^ ]*' /proc/mounts | xargs -r -n1 umount -l`]);
  };
  for (let i = 0; i < 120; i++) {
    if (child.exitCode !== null) return `dockerd exited: ${log.slice(-300)}`;
    if (docker(['version']).code === 0) return { host, docker, stop };
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  return `dockerd did not come up in 30 s: ${log.slice(-300)}`;
}
