// Per-run copies of /etc/hosts, /etc/resolv.conf and /etc/hostname: bound over the init layer's
// empty files, so the command may read (or even edit) them without touching the image or the host.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

const LOCALHOST = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n';

export function defaultHosts(network: 'host' | 'none' | 'private', hostname: string): string {
  // With the host's network the host's names still resolve; in a private one only loopback exists.
  const base = network === 'host' ? readOr('/etc/hosts', LOCALHOST) : LOCALHOST;
  return `${base}${base.endsWith('\n') || base === '' ? '' : '\n'}127.0.1.1\t${hostname}\n`;
}

export function defaultResolvConf(): string {
  return readOr('/etc/resolv.conf', '');
}

export interface HostFiles {
  hosts: string;
  resolv: string;
  hostname: string;
}

export function writeHostFiles(dir: string, hosts: string, resolv: string, hostname: string): HostFiles {
  const f = { hosts: join(dir, 'hosts'), resolv: join(dir, 'resolv.conf'), hostname: join(dir, 'hostname') };
  writeFileSync(f.hosts, hosts, { mode: 0o644 });
  writeFileSync(f.resolv, resolv, { mode: 0o644 });
  writeFileSync(f.hostname, hostname + '\n', { mode: 0o644 });
  return f;
}
