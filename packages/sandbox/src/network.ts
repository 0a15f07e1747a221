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
import { connect, isIPv4 } from 'node:net';
import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { launcherPath } from './launcher.js';
import { encodeHolderSpec, parseOutcome } from './spec.js';
import { rootless, tunAdvice, tunUsable } from './userns.js';
import { SandboxError } from './run.js';
import { defaultStateDir, makeRunDir, newRunId, removeRunDir } from './state.js';

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

export interface PrivateNetwork {
  /** Host pid of the process holding the namespace: a run joins it with SandboxSpec.netns. */
  readonly pid: number;
  readonly plan: AddressPlan;
  /** /etc/resolv.conf for runs in this network. */
  readonly resolvConf: string;
  /** Why lookups go to public nameservers, when the host's cannot be used (for the user to see). */
  readonly dnsWarning?: string;
  /** Ends the network (the namespace goes when its last run has ended). Idempotent. */
  close(): Promise<void>;
}

export interface NetworkOptions {
  ports?: PortMapping[];
  signal?: AbortSignal;
  /** Where the helper's API socket lives (with ports); see defaultStateDir(). */
  stateDir?: string;
}

/** Candidate /24s, the first one that overlaps no route of the host is used. */
const Subnets = ['10.0.2', '10.89.2', '172.30.2', '192.168.239'];

/** IPv4 routes of the host's namespace: [network, mask] as numbers, from /proc/net/route. */
function hostRoutes(): { dest: number; mask: number }[] {
  let text = '';
  try {
    text = readFileSync('/proc/net/route', 'utf8');
  } catch {
    return [];
  }
  // Columns: Iface Destination Gateway Flags RefCnt Use Metric Mask ...; each address is the
  // network-order word printed as a little-endian number: "0100A8C0" is 192.168.0.1.
  const addr = (h: string) => Buffer.from(h, 'hex').readUInt32LE(0);
  return text
    .split('\n')
    .slice(1)
    .filter((l) => l.trim())
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return { dest: addr(f[1]!), mask: addr(f[7]!) };
    });
}

function ip4(s: string): number {
  return s.split('.').reduce((a, p) => ((a << 8) | Number(p)) >>> 0, 0);
}

/** Whether the host has an IPv4 default route (the helper needs an outbound interface). */
function hasDefaultRoute(): boolean {
  return hostRoutes().some((r) => r.mask === 0);
}

/** The address plan: the first candidate /24 that no host route overlaps (a default route does not count). */
export function addressPlan(): AddressPlan {
  const routes = hostRoutes().filter((r) => r.mask !== 0);
  const free =
    Subnets.find((s) => {
      const net = ip4(`${s}.0`);
      const mask = 0xffffff00;
      return !routes.some((r) => {
        const m = (r.mask & mask) >>> 0;
        return (r.dest & m) >>> 0 === (net & m) >>> 0;
      });
    }) ?? Subnets[0]!;
  return { address: `${free}.100`, gateway: `${free}.2`, dns: `${free}.3` };
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** The host's nameservers (from /etc/resolv.conf). */
function hostNameservers(text: string): string[] {
  return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]!);
}

/** DNS in a private network, decided once from the host's resolv.conf. */
export interface DnsChoice {
  /** /etc/resolv.conf for runs in the network. */
  resolvConf: string;
  /** resolv.conf names the helper's forwarder; when it does not, the helper gets --disable-dns. */
  forwarder: boolean;
  /** Set when none of the host's nameservers can be used and public ones stand in. */
  warning?: string;
}

/** 127.0.0.0/8, and 0.0.0.0, which a connect() also takes to the host itself. */
const onHostLoopback = (a: string) => a.startsWith('127.') || a === '0.0.0.0';

/**
 * Nameservers: the helper's forwarder when the host's first nameserver is one the namespace can
 * reach (the forwarder asks that one); else the host's other IPv4 ones that are not loopback
 * (systemd-resolved or dnsmasq on 127.0.0.x cannot be reached from the namespace); else Google's
 * public servers, as Docker does. The search and options lines are the host's.
 * The forwarder is off unless resolv.conf names it: slirp4netns sends TCP and UDP to its address
 * (port 53) to the first IPv4 nameserver of the host's resolv.conf, loopback or not, with
 * --disable-host-loopback too, so a RUN step could otherwise talk to a resolver on the host's loopback.
 */
export function dnsChoice(plan: AddressPlan = addressPlan(), host = readOr('/etc/resolv.conf', '')): DnsChoice {
  const keep = host.split('\n').filter((l) => /^\s*(search|domain|options)\s/.test(l));
  const servers = hostNameservers(host);
  const reachable = servers.filter((a) => isIPv4(a) && !onHostLoopback(a));
  const forwarder = reachable.length > 0 && reachable[0] === servers[0];
  const ns = forwarder ? [plan.dns] : reachable.length ? reachable.slice(0, 3) : ['8.8.8.8', '8.8.4.4'];
  const resolvConf = [...ns.map((a) => `nameserver ${a}`), ...keep].join('\n') + '\n';
  if (reachable.length) return { resolvConf, forwarder };
  const why = servers.length
    ? `nameserver ${servers.join(', ')} (the host's resolv.conf) is on the host's loopback or IPv6 only, ` +
      'which the private network cannot reach'
    : "the host's resolv.conf names no nameserver";
  const warning =
    `${why}: RUN steps and containers use 8.8.8.8 and 8.8.4.4 instead, ` +
    'and their name lookups fail where those cannot be reached';
  return { resolvConf, forwarder, warning };
}

/** resolv.conf inside a private network (see dnsChoice). */
export function privateResolvConf(plan: AddressPlan = addressPlan()): string {
  return dnsChoice(plan).resolvConf;
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
    // Its API socket (port forwarding) lives in a state directory that cleanupStale() sweeps.
    if (ports.length) dir = makeRunDir(opts.stateDir ?? defaultStateDir(), `${newRunId()}-net`);
    helper = slirpArgs(slirp, plan, dir && join(dir, 'api.sock'), dns.forwarder);
  } else if (ports.length) {
    return Promise.reject(new SandboxError('cannot publish ports: the host has no IPv4 default route'));
  }
  // Without a default route the host reaches nothing outside itself either: the namespace gets lo only.
  const started = holder(helper, plan, dns, opts.signal, dir);
  if (!dir) return started;
  return started.then(
    async (net) => {
      try {
        for (const p of ports) await publish(join(dir!, 'api.sock'), p);
        return net;
      } catch (e) {
        await net.close();
        throw e;
      }
    },
    (e) => {
      removeRunDir(dir!);
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
  signal?: AbortSignal,
  dir?: string,
): Promise<PrivateNetwork> {
  if (signal?.aborted) return Promise.reject(new SandboxError('network start aborted'));
  return new Promise((resolve, reject) => {
    // Its own session: a terminal's Ctrl-C must not reach the helper while a container runs on.
    const child = spawn(launcherPath(), [], {
      stdio: ['pipe', 'ignore', 'pipe', 'pipe', 'pipe'],
      env: {},
      detached: true,
      argv0: 'tsbuild-netns',
    });
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
    const spec = child.stdio[3] as Writable;
    spec.on('error', () => {
      /* the launcher died early; its status says why */
    });
    spec.end(encodeHolderSpec(helper, rootless()));
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
      resolve(network(child, Number(m[1]), plan, dns, exited, () => closed, dir));
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
  for (const s of [child.stdin, child.stdio[2], child.stdio[4]])
    (s as unknown as Record<string, (() => void) | undefined> | null)?.[how]?.();
}

function network(
  child: ChildProcess,
  pid: number,
  plan: AddressPlan,
  dns: DnsChoice,
  exited: Promise<void>,
  closed: () => boolean,
  dir?: string,
): PrivateNetwork {
  let closing: Promise<void> | undefined;
  return {
    pid,
    plan,
    resolvConf: dns.resolvConf,
    dnsWarning: dns.warning,
    close() {
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
