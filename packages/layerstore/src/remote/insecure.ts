// Insecure registries as docker's daemon has them (dockerd --insecure-registry, and 127.0.0.0/8 always):
// spoken to over HTTPS without verifying the certificate, or over plain HTTP when they do not speak
// TLS (transport.ts probes which, client.ts remembers it). Everything else is HTTPS, verified.
import type * as Net from 'node:net';
import { createRequire } from 'node:module';

// node:net only when a value or a host is checked: most commands never do.
const requireBuiltin = createRequire(import.meta.url);
let netLib: typeof Net | undefined;
const net = () => (netLib ??= requireBuiltin('node:net') as typeof Net);

// docker's validHostPortRegex (distribution's DomainRegexp): DNS labels, then an optional port.
const label = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const hostPort = new RegExp(String.raw`^${label}(?:\.${label})*(?::[0-9]+)?$`);

/** Go's net.SplitHostPort, as docker uses it: undefined when `s` is not host:port. */
function splitHostPort(s: string): { host: string; port: string } | undefined {
  if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\]:([^:]*)$/.exec(s);
    return m ? { host: m[1], port: m[2] } : undefined;
  }
  const i = s.lastIndexOf(':');
  if (i < 0 || s.indexOf(':') !== i) return undefined;
  return { host: s.slice(0, i), port: s.slice(i + 1) };
}

/** A CIDR as Go's net.ParseCIDR takes it (address/prefix, v4 or v6); undefined otherwise. */
function parseCidr(s: string): { address: string; prefix: number; type: 'ipv4' | 'ipv6' } | undefined {
  const m = /^([^/]+)\/([0-9]{1,3})$/.exec(s);
  if (!m) return undefined;
  const family = net().isIP(m[1]);
  const prefix = Number(m[2]);
  if (family === 0 || prefix > (family === 4 ? 32 : 128)) return undefined;
  return { address: m[1], prefix, type: family === 4 ? 'ipv4' : 'ipv6' };
}

/**
 * One --insecure-registry value checked as dockerd checks it: a CIDR or host[:port] (an IPv6 literal
 * in brackets with a port); http:// or https:// in front is dropped with a warning, as dockerd does;
 * any other scheme, a path, a bad host or port, or a leading or trailing hyphen is refused. Throws an
 * Error saying what is wrong (dockerd's words); the caller names the flag and the value.
 */
export function checkInsecureRegistry(value: string): { entry: string; warning?: string } {
  if (value.startsWith('-') || value.endsWith('-'))
    throw new Error(`invalid index name (${value}). Cannot begin or end with a hyphen`);
  let entry = value;
  let warning: string | undefined;
  const scheme = /^(https?:\/\/)/i.exec(value)?.[1];
  if (scheme) {
    entry = value.slice(scheme.length);
    warning = `should not contain '${scheme.toLowerCase()}' and it has been removed`;
  } else if (value.includes('://')) throw new Error("should not contain '://'");
  if (parseCidr(entry)) return { entry, warning };
  const split = splitHostPort(entry);
  const host = split?.host ?? entry;
  if (!hostPort.test(entry) && net().isIP(host) === 0) throw new Error(`invalid host "${host}"`);
  if (split && split.port !== '') {
    if (!/^[0-9]+$/.test(split.port) || Number(split.port) > 65535) throw new Error(`invalid port "${split.port}"`);
  }
  return { entry, warning };
}

const stripScheme = (s: string) => s.replace(/^https?:\/\//i, '');

/**
 * Whether the registry at `host` (host[:port], an IPv6 literal in brackets) is insecure: loopback
 * (127.0.0.0/8 as docker; localhost, *.localhost and [::1], which name it), a host:port or host given
 * in `insecure`, or an IP literal within one of its CIDRs. Names are not looked up (docker resolves
 * them against the CIDRs; an IP literal is matched the same way here).
 */
export function isInsecureRegistry(host: string, insecure: readonly string[] = []): boolean {
  const lower = host.toLowerCase();
  const hostname = lower.startsWith('[') ? lower.slice(0, lower.indexOf(']') + 1) : lower.split(':')[0];
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) return true;
  const address = hostname.replace(/^\[(.*)\]$/, '$1');
  const family = /^[0-9.]+$|:/.test(address) ? net().isIP(address) : 0;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (family === 4 && address.startsWith('127.')) return true;
  if (family === 6 && net().isIPv6(address) && isLoopback6(address)) return true;
  for (const raw of insecure) {
    const e = stripScheme(raw).toLowerCase();
    if (e === lower || e === hostname || (family !== 0 && e === address)) return true;
    const cidr = family === 0 ? undefined : parseCidr(e);
    if (cidr && cidr.type === type) {
      const list = new (net().BlockList)();
      list.addSubnet(cidr.address, cidr.prefix, cidr.type);
      if (list.check(address, type)) return true;
    }
  }
  return false;
}

function isLoopback6(address: string): boolean {
  const list = new (net().BlockList)();
  list.addAddress('::1', 'ipv6');
  return list.check(address, 'ipv6');
}
