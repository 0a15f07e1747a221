// The values of the build flags that CI wrappers pass to `docker buildx build`, parsed as buildx and
// docker parse them: --label, --annotation, --add-host, --ulimit, --shm-size. Each bad value is a
// usage error naming the flag. Also --build-context's values.
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { rlimitNumbers, type Rlimit } from '@tsbuild/sandbox';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatPlatform, normalizePlatform, parseReference, type Platform } from '@tsbuild/layerstore';
import { UsageError } from '../errors.js';
import type { NamedContext } from '../solver/named-contexts.js';

/** `--label K=V` (K alone: an empty value, as buildx). Later ones win. */
export function parseLabels(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    const key = eq < 0 ? v : v.slice(0, eq);
    if (!key) throw new UsageError(`--label "${v}": missing name`);
    out[key] = eq < 0 ? '' : v.slice(eq + 1);
  }
  return out;
}

/** Where `--annotation`s go: the platform's manifest, and with several platforms the index and its entries. */
export interface Annotations {
  manifest: Record<string, string>;
  /** On the image index (`index:`): several platforms only. */
  index: Record<string, string>;
  /** On this platform's entry in the index (`manifest-descriptor:`): several platforms only. */
  manifestDescriptor: Record<string, string>;
}

/**
 * `--annotation [TYPE[,TYPE...][\[PLATFORM\]]:]K=V`, buildx's syntax (no TYPE means manifest). With one
 * platform tsbuild writes a manifest and no index over it, and BuildKit refuses index annotations for a
 * single-platform export ("index annotations not supported for single platform export"), so `index:` and
 * the descriptor types are refused there; with several (`multi`), `index:` goes on the index and
 * `manifest-descriptor:` on each platform's entry in it. `index-descriptor:` annotates the index's own
 * descriptor, which only an OCI layout's index.json holds (-o, refused with several platforms): refused. An
 * annotation for another platform is left out, as BuildKit leaves it out of this platform's manifest.
 */
export function parseAnnotations(values: string[], platform: string, multi = false): Annotations {
  const out: Annotations = { manifest: {}, index: {}, manifestDescriptor: {} };
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`--annotation "${v}": expected [TYPE:]KEY=VALUE`);
    const left = v.slice(0, eq);
    const m = /^(?:([a-z-]+(?:,[a-z-]+)*)(?:\[([A-Za-z0-9_/.-]+)\])?:)?([^\s:]+)$/.exec(left);
    if (!m) throw new UsageError(`--annotation "${v}": expected [TYPE[,TYPE][\\[PLATFORM\\]]:]KEY=VALUE`);
    const types = m[1] ? m[1].split(',') : ['manifest'];
    const targets: (keyof Annotations)[] = [];
    for (const t of types) {
      if (t === 'manifest') targets.push('manifest');
      else if ((t === 'index' || t === 'manifest-descriptor') && multi)
        targets.push(t === 'index' ? 'index' : 'manifestDescriptor');
      else if (t === 'index' || t === 'manifest-descriptor')
        throw new UsageError(
          `--annotation ${v}: ${t} annotations are not supported for a single-platform image ` +
            '(it is a manifest with no index over it; give several --platform values for an index)',
        );
      else if (t === 'index-descriptor')
        throw new UsageError(
          `--annotation ${v}: index-descriptor annotations are not supported (they go in an OCI layout's ` +
            'index.json, which tsbuild writes for one platform only)',
        );
      else throw new UsageError(`--annotation ${v}: unknown type "${t}" (manifest, index, manifest-descriptor, ...)`);
    }
    if (m[2] && targets.includes('index'))
      throw new UsageError(`--annotation ${v}: an index annotation is for every platform; it cannot name one`);
    if (m[2] && normalPlatform(m[2]) !== normalPlatform(platform)) continue;
    for (const t of targets) out[t][m[3]] = v.slice(eq + 1);
  }
  return out;
}

/**
 * OS/ARCH[/VARIANT] normalized as containerd does (aliases, arm's default variants), as buildx keys a
 * platform's annotations and BuildKit reads them back for each image's own platform: the variant counts.
 */
function normalPlatform(p: string): string {
  // One part is an architecture, as in --platform (arm64: linux/arm64).
  const [os = '', architecture = '', variant] = p.includes('/') ? p.split('/') : ['linux', p];
  return formatPlatform(normalizePlatform(variant ? { os, architecture, variant } : { os, architecture }));
}

/**
 * `--add-host HOST:IP` (or HOST=IP, as docker 25 accepts); IP `host-gateway` is the host: its first
 * non-loopback IPv4 address, which RUN steps reach through their network (docker uses its bridge's).
 */
export function parseAddHosts(values: string[]): { host: string; ip: string }[] {
  return values.map((v) => {
    const sep = /[:=]/.exec(v);
    const host = sep ? v.slice(0, sep.index) : '';
    let ip = sep ? v.slice(sep.index + 1) : '';
    if (!host || !ip) throw new UsageError(`--add-host "${v}": expected HOST:IP`);
    if (!/^[A-Za-z0-9_.-]+$/.test(host)) throw new UsageError(`--add-host "${v}": "${host}" is not a host name`);
    if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
    if (ip === 'host-gateway') ip = hostGateway(v);
    if (!isIP(ip)) throw new UsageError(`--add-host "${v}": "${ip}" is not an IP address`);
    return { host, ip };
  });
}

function hostGateway(flag: string): string {
  for (const addrs of Object.values(networkInterfaces()))
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  throw new UsageError(`--add-host ${flag}: this host has no IPv4 address other than loopback for host-gateway`);
}

/** `--ulimit TYPE=SOFT[:HARD]`, docker's names; -1 is unlimited. */
export function parseUlimits(values: string[]): Rlimit[] {
  const byType = new Map<string, Rlimit>();
  for (const v of values) {
    const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(v);
    if (!m) throw new UsageError(`--ulimit "${v}": expected TYPE=SOFT[:HARD], e.g. nofile=1024:2048`);
    const resource = Object.hasOwn(rlimitNumbers, m[1]) && m[1] !== 'as' ? rlimitNumbers[m[1]] : undefined;
    if (resource === undefined)
      throw new UsageError(
        `--ulimit ${v}: unknown type "${m[1]}" (${Object.keys(rlimitNumbers)
          .filter((k) => k !== 'as')
          .join(', ')})`,
      );
    const value = (s: string) => {
      const n = Number(s);
      if (n < -1 || !Number.isSafeInteger(n)) throw new UsageError(`--ulimit ${v}: "${s}" is not a limit (-1: none)`);
      return n;
    };
    const soft = value(m[2]);
    const hard = m[3] === undefined ? soft : value(m[3]);
    // -1 is RLIM_INFINITY, the largest value there is.
    if (hard !== -1 && (soft === -1 || soft > hard))
      throw new UsageError(`--ulimit ${v}: the soft limit must not be above the hard limit`);
    byType.set(m[1], { resource, soft, hard });
  }
  return [...byType.values()];
}

/** `--shm-size 64m`: docker's sizes (a number of bytes, or with b, k, m, g, t: powers of 1024). */
export function parseShmSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?$/i.exec(v.trim());
  if (!m) throw new UsageError(`--shm-size "${v}": expected a size such as 64m or 1g`);
  const bytes = Math.floor(Number(m[1]) * 1024 ** 'bkmgtp'.indexOf((m[2] || 'b').toLowerCase()));
  if (bytes <= 0) throw new UsageError(`--shm-size "${v}": must be more than 0`);
  return bytes;
}

/** `--build-context NAME=VALUE`: a directory, `docker-image://REF` or `oci-layout://PATH[:TAG|@DIGEST]`. */
export function parseBuildContexts(values: string[]): NamedContext[] {
  const out = new Map<string, NamedContext>();
  for (const v of values) {
    const eq = v.indexOf('=');
    const name = eq < 0 ? '' : v.slice(0, eq);
    const value = eq < 0 ? '' : v.slice(eq + 1);
    if (!name || !value) throw new UsageError(`--build-context "${v}": expected NAME=VALUE`);
    if (!/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/.test(name))
      throw new UsageError(`--build-context "${v}": "${name}" is not a valid name`);
    if (value.startsWith('docker-image://')) {
      const ref = value.slice('docker-image://'.length);
      try {
        parseReference(ref);
      } catch (e) {
        throw new UsageError(`--build-context ${v}: ${(e as Error).message}`);
      }
      out.set(name, { name, type: 'image', ref });
    } else if (value.startsWith('oci-layout://')) {
      const rest = value.slice('oci-layout://'.length);
      const at = /^(.+)@(sha256:[0-9a-f]{64})$/.exec(rest);
      const colon = rest.lastIndexOf(':');
      const tagged = !at && colon > rest.lastIndexOf('/') ? colon : -1;
      const dir = at ? at[1] : tagged >= 0 ? rest.slice(0, tagged) : rest;
      if (!dir) throw new UsageError(`--build-context ${v}: no layout path`);
      if (!statSync(resolve(dir), { throwIfNoEntry: false })?.isDirectory())
        throw new UsageError(`--build-context ${v}: ${dir} is not a directory (an OCI layout)`);
      out.set(name, {
        name,
        type: 'oci-layout',
        dir: resolve(dir),
        ...(at ? { digest: at[2] as `sha256:${string}` } : tagged >= 0 ? { tag: rest.slice(tagged + 1) } : {}),
      });
    } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || /^git@/.test(value)) {
      throw new UsageError(`--build-context ${v}: remote contexts (URLs, git) are not supported`);
    } else {
      if (!statSync(resolve(value), { throwIfNoEntry: false })?.isDirectory())
        throw new UsageError(`--build-context ${v}: ${value} is not a directory`);
      out.set(name, { name, type: 'dir', dir: resolve(value) });
    }
  }
  return [...out.values()];
}

/** OCI architectures --platform takes, and their other spellings (normalizePlatform maps those). */
const architectures = ['amd64', 'arm64', 'arm', '386', 'ppc64le', 's390x', 'riscv64', 'mips64le'];

/**
 * `--platform OS/ARCH[/VARIANT][,...]` or a bare ARCH (linux is then the OS), as buildx takes it:
 * `amd64`, `linux/x86_64` and `linux/amd64` are the same platform. Only linux.
 */
export function parsePlatforms(value: string): Platform[] {
  const out: Platform[] = [];
  for (const v of value.split(',').map((s) => s.trim())) {
    const parts = v.split('/');
    if (!v || parts.length > 3 || parts.some((x) => !x))
      throw new UsageError(`--platform ${value}: "${v}" is not OS/ARCH[/VARIANT]`);
    const [os, architecture, variant] = parts.length === 1 ? ['linux', parts[0]] : parts;
    const p = normalizePlatform({ os, architecture, ...(variant ? { variant } : {}) });
    if (p.os !== 'linux') throw new UsageError(`--platform ${v}: only linux images are built (not ${p.os})`);
    if (!architectures.includes(p.architecture))
      throw new UsageError(`--platform ${v}: unknown architecture "${architecture}" (${architectures.join(', ')})`);
    if (!out.some((q) => formatPlatform(q) === formatPlatform(p))) out.push(p);
  }
  return out;
}
