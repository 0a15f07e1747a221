// Certificates and addresses for the registry tests that tell verified TLS, unverified TLS and plain HTTP apart.
import { execFileSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';

/**
 * An IPv4 address of this machine that is not loopback, or undefined when it has none. Docker (and tsbuild)
 * treat every 127.0.0.0/8 registry as insecure, so certificate verification can only be seen elsewhere.
 */
export function outsideAddress(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
}

/**
 * A self-signed server certificate (no CA anywhere trusts it) for the given IP addresses, written to
 * DIR/cert.pem and DIR/key.pem; returns their paths in the shape testkit's startRegistry takes.
 */
export function selfSignedCertificate(dir: string, ips: string[]): { certificate: string; key: string } {
  const sans = ips.map((ip) => `IP:${ip}`).join(',');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2'].concat([
      '-subj',
      '/CN=tsbuild insecure test',
      '-addext',
      `subjectAltName=${sans}`,
    ]),
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { certificate: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
}
