// A private network's addresses and DNS, decided from the host's routes and resolv.conf (see network.ts).
import { isIPv4 } from 'node:net';
import { readFileSync } from 'node:fs';
import type { AddressPlan } from './types.js';

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
      return { dest: addr(f[1]), mask: addr(f[7]) };
    });
}

function ip4(s: string): number {
  return s.split('.').reduce((a, p) => ((a << 8) | Number(p)) >>> 0, 0);
}

/** Whether the host has an IPv4 default route (the helper needs an outbound interface). */
export function hasDefaultRoute(): boolean {
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
    }) ?? Subnets[0];
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
  return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]);
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
