// --ssh default|ID=PATH[,PATH...] (buildx's syntax) and RUN --mount=type=ssh: each ID names an
// ssh-agent socket the step may use. `default` alone is $SSH_AUTH_SOCK; a PATH that is a socket is
// that agent; key files are loaded into a private ssh-agent (openssh-client's) started for this
// build and stopped after it. Only the socket reaches a step (a bind mount, never in a layer), and
// only the mount's id, mode and owner shape the cache key: never a key, a path or the agent's keys.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';

export interface SshSource {
  id: string;
  /** Sockets or key files; none: $SSH_AUTH_SOCK. */
  paths: string[];
}

/** `--ssh default`, `--ssh ID=PATH[,PATH]`; checked at once so that a typo fails before the build. */
export function parseSsh(values: string[]): SshSource[] {
  const out = new Map<string, SshSource>();
  for (const v of values) {
    const eq = v.indexOf('=');
    const id = eq < 0 ? v : v.slice(0, eq);
    const paths =
      eq < 0
        ? []
        : v
            .slice(eq + 1)
            .split(',')
            .filter(Boolean);
    if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw new UsageError(`--ssh "${v}": expected default|ID[=PATH[,PATH...]]`);
    if (paths.length === 0 && !process.env.SSH_AUTH_SOCK)
      throw new UsageError(`--ssh ${v}: SSH_AUTH_SOCK is not set (no agent to forward); give ID=KEYFILE or ID=SOCKET`);
    for (const p of paths.length ? paths : [process.env.SSH_AUTH_SOCK!]) {
      const st = statSync(resolve(p), { throwIfNoEntry: false });
      if (!st || !(st.isSocket() || st.isFile()))
        throw new UsageError(`--ssh ${v}: ${p} is neither an agent socket nor a key file`);
    }
    if (paths.some((p) => statSync(resolve(p)).isSocket()) && paths.length > 1)
      throw new UsageError(`--ssh ${v}: an agent socket cannot be combined with other paths`);
    out.set(id, { id, paths: paths.map((p) => resolve(p)) });
  }
  return [...out.values()];
}

export interface SshAgents {
  /** The host socket of each id. */
  sockets: Map<string, string>;
  /** Stops the private agents (and waits for them) and removes their sockets. */
  close(): Promise<void>;
}

/** The sockets for these sources; key files go into one private agent per id. */
export async function startAgents(sources: SshSource[]): Promise<SshAgents> {
  const sockets = new Map<string, string>();
  const agents: ChildProcess[] = [];
  let dir: string | undefined;
  const close = async () => {
    await Promise.all(
      agents.map(
        (a) =>
          new Promise<void>((done) => {
            if (a.pid === undefined || a.exitCode !== null || a.signalCode !== null) return done();
            a.once('exit', () => done());
            a.kill('SIGTERM');
          }),
      ),
    );
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const s of sources) {
      const paths = s.paths.length ? s.paths : [process.env.SSH_AUTH_SOCK!];
      if (statSync(paths[0]).isSocket()) {
        sockets.set(s.id, paths[0]);
        continue;
      }
      dir ??= mkdtempSync(join(tmpdir(), 'tsbuild-ssh-'));
      const sock = join(dir, `agent-${sockets.size}`);
      const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: ['ignore', 'pipe', 'pipe'] });
      agents.push(agent);
      // With -D, ssh-agent prints its SSH_AUTH_SOCK line once it listens.
      await new Promise<void>((ok, fail) => {
        agent.once('error', (e) =>
          fail(new UsageError(`--ssh ${s.id}: cannot start ssh-agent (apt-get install openssh-client): ${e.message}`)),
        );
        agent.stdout!.once('data', () => ok());
        agent.once('exit', (code) => fail(new UsageError(`--ssh ${s.id}: ssh-agent exited (${code})`)));
      });
      for (const key of paths) {
        const r = spawnSync('ssh-add', ['-q', key], {
          env: { ...process.env, SSH_AUTH_SOCK: sock, SSH_ASKPASS_REQUIRE: 'never', DISPLAY: '' },
          stdio: ['ignore', 'pipe', 'pipe'],
          encoding: 'utf8',
        });
        if (r.status !== 0)
          throw new UsageError(
            `--ssh ${s.id}: ${key}: ssh-add failed: ${(r.stderr || String(r.error ?? r.status)).trim()}` +
              ' (a key with a passphrase: load it into your own agent and use --ssh default)',
          );
      }
      sockets.set(s.id, sock);
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { sockets, close };
}
