// The default network: a private network namespace with outbound connectivity, as Docker's default
// bridge gives, made without touching the host's interfaces, routes, firewall or sysctls.
//
//   launcher in netholder mode (native/launcher.c): a new network namespace, lo up, held open
//     └─ slirp4netns (Debian package slirp4netns), in the host's namespace: a user-mode TCP/IP
//        stack (libslirp) whose host-side sockets carry the namespace's traffic; a tap "eth0" inside
//
// One network serves many runs: a build makes one on its first RUN step that needs it and its
// steps join it (setns, cheaper than a new namespace per step); a container gets its own, with
// its published ports. What the namespace cannot reach:
//  - the host's loopback: the gateway is not mapped to it (--disable-host-loopback); and since the
//    helper forwards a frame hand-made for 127.0.0.1 as its own host connection (slirp4netns 1.2
//    and pasta 2023-03 both do), runs in it get no CAP_NET_RAW, so no raw or packet sockets;
//  - the host's abstract unix sockets (they belong to a network namespace);
//  - anything published by accident: only the ports asked for are forwarded in (its API socket).
// Why not pasta (Debian's passt): the version Debian 12 ships loses the host's FIN when the guest
// half-closes first (`nc host port </dev/null` hung in about half the runs); slirp4netns does not.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { accessSync, closeSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { launcherPath } from './launcher.js';
import { collectStatus, encodeHolderSpec, launchEnd, parseOutcome, specFile } from './spec.js';
import { rootless, tunAdvice, tunUsable } from './userns.js';
import { SandboxError } from './errors.js';
import { addressPlan, dnsChoice, hasDefaultRoute, type DnsChoice } from './addresses.js';
import type { AddressPlan, Launched, LaunchIO, PortMapping, PrivateNetwork } from './types.js';
import { defaultStateDir, makeRunDir, newRunId, removeRunDir } from './state.js';

export interface NetworkOptions {
  ports?: PortMapping[];
  signal?: AbortSignal;
  /** Where the helper's API socket lives (with ports); see defaultStateDir(). */
  stateDir?: string;
  /**
   * The stdio of the one container that will run in this network, when it is known now (`run` in the
   * foreground, without a tty): the holder is given them at its start and starts that container's
   * launcher itself (PrivateNetwork.launch), so that this process forks once for the container, not
   * twice (a fork of Node blocks it until the child has exec'd: 2-3 ms, tens under load).
   */
  launcherStdio?: LauncherStdio;
}

/** A container's stdin, stdout and stderr: this process's own ('inherit'), or /dev/null. */
export interface LauncherStdio {
  stdin: 'inherit' | 'ignore';
  stdout: 'inherit' | 'ignore';
  stderr: 'inherit' | 'ignore';
}

/** slirp4netns's path: $TSBUILD_SLIRP4NETNS, else the first in PATH and the usual system directories. */
export function slirpPath(): string | undefined {
  if (process.env.TSBUILD_SLIRP4NETNS) return process.env.TSBUILD_SLIRP4NETNS;
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/bin', '/usr/sbin', '/bin', '/sbin'];
  for (const d of dirs) {
    try {
      accessSync(join(d, 'slirp4netns'), constants.X_OK);
      return join(d, 'slirp4netns');
    } catch {
      /* next */
    }
  }
  return undefined;
}

/**
 * slirp4netns's arguments; fds 5 (the namespace), 6 (ready) and 7 (quit) come from the launcher.
 * `dns`: whether its DNS forwarder stays on (only when resolv.conf names it, see dnsChoice).
 */
export function slirpArgs(path: string, plan: AddressPlan, apiSocket?: string, dns = false): string[] {
  return [
    path,
    '--configure',
    '--mtu=65520',
    `--cidr=${plan.gateway.replace(/\.\d+$/, '.0')}/24`,
    // The gateway (10.0.2.2) would otherwise be the host's 127.0.0.1.
    '--disable-host-loopback',
    // Its own mount namespace with an empty root, every capability but NET_BIND_SERVICE dropped,
    // and a seccomp filter: it parses the namespace's (untrusted) packets.
    '--enable-sandbox',
    '--enable-seccomp',
    ...(dns ? [] : ['--disable-dns']),
    '--ready-fd=6',
    '--exit-fd=7',
    ...(apiSocket ? [`--api-socket=${apiSocket}`] : []),
    '--netns-type=path',
    '/proc/self/fd/5',
    'eth0',
  ];
}

/** Starts a private network; resolves once its namespace is configured. */
export function startNetwork(opts: NetworkOptions = {}): Promise<PrivateNetwork> {
  const plan = addressPlan();
  const dns = dnsChoice(plan);
  const ports = opts.ports ?? [];
  let helper: string[] = [];
  let dir: string | undefined;
  if (hasDefaultRoute()) {
    const slirp = slirpPath();
    if (!slirp) {
      return Promise.reject(
        new SandboxError(
          'the default (private) network needs slirp4netns, from the ' +
            'Debian/Ubuntu package "slirp4netns" (apt-get install slirp4netns); or use --network none, or the ' +
            "host's network (--network host; a build also needs --allow network.host)",
        ),
      );
    }
    if (rootless() && !tunUsable()) return Promise.reject(new SandboxError(tunAdvice));
    // Its API socket (port forwarding) lives in a state directory that cleanupStale() sweeps. Its
    // failure is the promise's, never thrown: callers start a network ahead and await it later.
    try {
      if (ports.length) dir = makeRunDir(opts.stateDir ?? defaultStateDir(), `${newRunId()}-net`);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    helper = slirpArgs(slirp, plan, dir && join(dir, 'api.sock'), dns.forwarder);
  } else if (ports.length) {
    return Promise.reject(new SandboxError('cannot publish ports: the host has no IPv4 default route'));
  }
  // Without a default route the host reaches nothing outside itself either: the namespace gets lo only.
  const started = holder(helper, plan, dns, opts.stateDir ?? defaultStateDir(), opts.signal, dir, opts.launcherStdio);
  if (!dir) return started;
  return started.then(
    async (net) => {
      try {
        for (const p of ports) await publish(join(dir, 'api.sock'), p);
        return net;
      } catch (e) {
        await net.close();
        throw e;
      }
    },
    (e) => {
      removeRunDir(dir);
      throw e;
    },
  );
}

/** Forwards a host port into the namespace through slirp4netns's API socket (one request a connection). */
function publish(socket: string, p: PortMapping): Promise<void> {
  const what = `${p.hostIp ?? '0.0.0.0'}:${p.hostPort} -> ${p.containerPort}/${p.protocol}`;
  const request = {
    execute: 'add_hostfwd',
    arguments: {
      proto: p.protocol,
      host_addr: p.hostIp ?? '0.0.0.0',
      host_port: p.hostPort,
      guest_port: p.containerPort,
    },
  };
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let reply = '';
    c.setEncoding('utf8').on('data', (d: string) => {
      reply += d;
    });
    c.on('connect', () => c.write(JSON.stringify(request)));
    c.on('error', (e) => reject(new SandboxError(`cannot publish ${what}: ${e.message}`)));
    c.on('close', () => {
      let r: { return?: unknown; error?: { desc?: string } } = {};
      try {
        r = JSON.parse(reply);
      } catch {
        /* below */
      }
      if (r.return !== undefined) return resolve();
      const why = r.error?.desc ?? (reply || 'no answer');
      reject(new SandboxError(`cannot publish ${what}: ${why} (is the port in use, or the address not the host's?)`));
    });
  });
}

function holder(
  helper: string[],
  plan: AddressPlan,
  dns: DnsChoice,
  stateDir: string,
  signal?: AbortSignal,
  dir?: string,
  launcherStdio?: LauncherStdio,
): Promise<PrivateNetwork> {
  if (signal?.aborted) return Promise.reject(new SandboxError('network start aborted'));
  return new Promise((resolve, reject) => {
    const encoded = encodeHolderSpec(helper, rootless(), launcherStdio !== undefined);
    // A spawner's fds 5-7: the container's stdio; 8: its launcher's status.
    const fd = (v: 'inherit' | 'ignore', own: number): number | 'ignore' => (v === 'inherit' ? own : 'ignore');
    const spawnerStdio: (number | 'ignore' | 'pipe')[] = launcherStdio
      ? [fd(launcherStdio.stdin, 0), fd(launcherStdio.stdout, 1), fd(launcherStdio.stderr, 2), 'pipe']
      : [];
    // Its spec in a file, not a pipe: the caller goes on at once with synchronous work (see specFile).
    const file = specFile(stateDir, encoded);
    let child: ChildProcess;
    try {
      // Its own session: a terminal's Ctrl-C must not reach the helper while a container runs on.
      child = spawn(launcherPath(), [], {
        stdio: ['pipe', 'ignore', 'pipe', file ?? 'pipe', 'pipe', ...spawnerStdio],
        env: {},
        detached: true,
        argv0: 'tsbuild-netns',
      });
    } finally {
      if (file !== undefined) closeSync(file);
    }
    let status = '';
    let stderr = '';
    let ready = false;
    let closed = false;
    const exited = new Promise<void>((r) =>
      child.once('close', () => {
        closed = true;
        r();
      }),
    );
    const onAbort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', onAbort, { once: true });
    (child.stdio[2] as Readable).setEncoding('utf8').on('data', (s: string) => {
      if (stderr.length < 4096) stderr += s;
    });
    if (file === undefined) {
      const spec = child.stdio[3] as Writable;
      spec.on('error', () => {
        /* the launcher died early; its status says why */
      });
      spec.end(encoded);
    }
    (child.stdin as Writable).on('error', () => {
      /* gone: it has ended */
    });
    (child.stdio[4] as Readable).setEncoding('utf8').on('data', (s: string) => {
      status += s;
      const m = !ready && status.match(/^pid (\d+)$/m);
      if (!m) return;
      ready = true;
      signal?.removeEventListener('abort', onAbort);
      // A network forgotten by its owner must not keep the process alive; when the process ends
      // the lifeline closes and the holder (and the helper with it) ends too.
      refs(child, 'unref');
      resolve(network(child, Number(m[1]), plan, dns, exited, () => closed, dir, launcherStdio));
    });
    child.on('error', (e) => reject(new SandboxError(`cannot start the launcher ${launcherPath()}: ${e.message}`)));
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      if (ready) return;
      if (signal?.aborted) return reject(new SandboxError('network start aborted'));
      const o = parseOutcome(status);
      const why = o?.kind === 'setup' ? o.message : `the launcher ended without a report (${sig ?? `exit ${code}`})`;
      // slirp4netns chats on stdout ("sent tapfd=5 for eth0"): keep only what looks like a reason.
      const said = stderr
        .split('\n')
        .filter((l) => /error|fail|cannot|can't|denied|not /i.test(l))
        .join('; ');
      reject(new SandboxError(`cannot start the private network: ${why}${said ? `: ${said}` : ''}`));
    });
  });
}

/** Whether the holder (its process and pipes) keeps Node's event loop alive. */
function refs(child: ChildProcess, how: 'ref' | 'unref'): void {
  child[how]();
  for (const s of [child.stdin, child.stdio[2], child.stdio[4], stdioOf(child, 8)]) streamRef(s, how);
}

/** The child's pipe at fd `i` (beyond the five that ChildProcess's type knows). */
function stdioOf(child: ChildProcess, i: number): Readable | undefined {
  return (child.stdio as unknown as (Readable | null | undefined)[])[i] ?? undefined;
}

function streamRef(s: unknown, how: 'ref' | 'unref'): void {
  (s as Record<string, (() => void) | undefined> | null | undefined)?.[how]?.();
}

function network(
  child: ChildProcess,
  pid: number,
  plan: AddressPlan,
  dns: DnsChoice,
  exited: Promise<void>,
  closed: () => boolean,
  dir?: string,
  launcherStdio?: LauncherStdio,
): PrivateNetwork {
  let closing: Promise<void> | undefined;
  let launchable = launcherStdio !== undefined;
  return {
    launch(encoded: Buffer, io: LaunchIO): Promise<Launched> | undefined {
      const given = (v: LaunchIO['stdin'] | LaunchIO['stdout'], want: 'inherit' | 'ignore' | undefined) =>
        (v ?? 'ignore') === want;
      if (!launchable || closing || closed() || io.tty || !io.newSession) return undefined;
      if (!given(io.stdin, launcherStdio?.stdin) || !given(io.stdout, launcherStdio?.stdout)) return undefined;
      if (!given(io.stderr, launcherStdio?.stderr)) return undefined;
      launchable = false;
      return heldLaunch(child, encoded, io);
    },
    pid,
    plan,
    resolvConf: dns.resolvConf,
    dnsWarning: dns.warning,
    close({ wait = true } = {}) {
      if (!wait && !dir && !closing) {
        // EOF on the lifeline, and nothing else: the holder stays unref'd, as it has been since it started.
        if (!closed()) (child.stdin as Writable).end();
        return Promise.resolve();
      }
      closing ??= (async () => {
        if (!closed()) {
          refs(child, 'ref');
          // EOF on its stdin ends the holder, which ends the helper and waits for it.
          (child.stdin as Writable).end();
          await exited;
        }
        if (dir) removeRunDir(dir);
      })();
      return closing;
    },
  };
}

/**
 * The container's launcher, forked by the holder (launcher.c launch_container): its spec goes down the
 * holder's lifeline, its status comes on the holder's fd 8 (EOF: the launcher and its PID 1 are gone),
 * and the holder reports its pid ("launched N") for an abort.
 */
function heldLaunch(child: ChildProcess, encoded: Buffer, io: LaunchIO): Promise<Launched> {
  const statusStream = stdioOf(child, 8)!;
  const holderStatus = child.stdio[4] as Readable;
  return new Promise((resolve, reject) => {
    // Kept alive by the launch (the holder's pipes are unref'd so that a forgotten network does not).
    streamRef(statusStream, 'ref');
    let launcherPid: number | undefined;
    let aborted = false;
    const onLaunched = (s: string) => {
      const m = s.match(/^launched (\d+)$/m);
      if (m) launcherPid = Number(m[1]);
      if (aborted && launcherPid) kill(launcherPid);
    };
    holderStatus.on('data', onLaunched);
    const onAbort = () => {
      aborted = true;
      // The launcher's death takes PID 1 (PDEATHSIG) and with it the whole pid namespace.
      if (launcherPid) kill(launcherPid);
    };
    io.signal?.addEventListener('abort', onAbort, { once: true });
    const statusText = collectStatus(statusStream, io.onStart);
    statusStream.on('end', () => {
      io.signal?.removeEventListener('abort', onAbort);
      holderStatus.off('data', onLaunched);
      streamRef(statusStream, 'unref');
      try {
        resolve(launchEnd(statusText(), aborted, 'started by the network holder'));
      } catch (e) {
        reject(e as Error);
      }
    });
    (child.stdin as Writable).write(Buffer.concat([Buffer.from(`launch ${encoded.length}\n`), encoded]));
  });
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}
