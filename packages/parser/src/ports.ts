import { isIP } from 'node:net';

/**
 * Why an EXPOSE word (variables already expanded) is not a port BuildKit takes, or undefined when it is.
 * BuildKit's rule is go-connections' ParsePortSpec: `[[IP:]HOSTPORT:]PORT[/PROTO]`, each port a number or a
 * range `LOW-HIGH` of 0-65535, the protocol tcp, udp or sctp in any case (empty: tcp). The checks run in its
 * order, so the first problem said is the one BuildKit would say.
 */
export function portProblem(spec: string): string | undefined {
  const parts = spec.split(':');
  const last = parts[parts.length - 1];
  const host = parts.length >= 2 ? parts[parts.length - 2] : '';
  let ip = parts.length >= 3 ? parts.slice(0, -2).join(':') : '';
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (ip !== '' && isIP(ip) === 0) return `invalid IP address "${ip}"`;
  const [port = '', proto = ''] = last.split('/');
  if (port === '') return `no port in "${spec}"`;
  const range = portRange(port);
  if (!range) return `invalid port "${port}"`;
  if (host !== '') {
    const hostRange = portRange(host);
    if (!hostRange) return `invalid host port "${host}"`;
    if (range[1] !== range[0] && hostRange[1] - hostRange[0] !== range[1] - range[0])
      return `the port range ${port} and the host port range ${host} differ in length`;
  }
  if (!['', 'tcp', 'udp', 'sctp'].includes(proto.toLowerCase())) return `invalid protocol "${proto}"`;
  return undefined;
}

/** `80` or `8000-8010` (Go's ParsePortRange: decimal digits, 16 bits, low <= high), else undefined. */
function portRange(text: string): [number, number] | undefined {
  const [lo, hi = lo] = text.split('-');
  const n = (s: string) => (/^\d+$/.test(s) && Number(s) <= 65535 ? Number(s) : undefined);
  const a = n(lo);
  const b = n(hi);
  return a === undefined || b === undefined || b < a ? undefined : [a, b];
}
