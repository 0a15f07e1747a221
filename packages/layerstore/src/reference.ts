// Image references as Docker spells them: [host[:port]/]path[:tag][@sha256:hex].
// A name without a host means Docker Hub, and a one-part Hub name lives under library/.
import { redactCredentials, type Coded } from '@tsbuild/errdefs';

export interface Reference {
  /** Registry host as written (docker.io for Hub). */
  registry: string;
  /** Repository path, e.g. library/alpine. */
  repository: string;
  tag?: string;
  digest?: string;
}

/** Not `ReferenceError`: that name is JavaScript's own, and shadowing it hid real bugs. */
export class InvalidReferenceError extends Error implements Coded {
  readonly errdef = 'invalid';
  readonly input: string;
  constructor(input: string, reason: string) {
    // The input as typed may hold a password (user:password@host/app); it is kept only redacted.
    input = redactCredentials(input);
    super(`invalid reference "${input}": ${reason}`);
    this.input = input;
    this.name = 'InvalidReferenceError';
  }
}

const pathComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const digestPattern = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
// A registry host: an IPv6 literal in brackets or dot-separated DNS labels, then an optional port.
const dnsLabel = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
export const hostPattern = new RegExp(String.raw`^(?:\[[0-9a-fA-F:]+\]|${dnsLabel}(?:\.${dnsLabel})*)(?::[0-9]+)?$`);

export const DockerHub = 'docker.io';

export function parseReference(input: string): Reference {
  if (input.length === 0) throw new InvalidReferenceError(input, 'empty');
  if (input.length > 4096) throw new InvalidReferenceError(input, 'too long');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestPattern.test(digest)) {
      // user:password@host/app reads as name:tag@digest: say what it is instead of a bad digest.
      if (redactCredentials(input) !== input)
        throw new InvalidReferenceError(input, 'a reference holds no credentials (user:password@): use tsbuild login');
      throw new InvalidReferenceError(input, `bad digest "${digest}"`);
    }
    if (digest.startsWith('sha256:') && !/^sha256:[a-f0-9]{64}$/.test(digest))
      throw new InvalidReferenceError(input, 'sha256 digest must be 64 lowercase hex digits');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) throw new InvalidReferenceError(input, `bad tag "${tag}"`);
  }
  let registry = DockerHub;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (
      first.includes('.') ||
      first.includes(':') ||
      first === 'localhost' ||
      first.startsWith('[') ||
      /[A-Z]/.test(first)
    ) {
      if (!hostPattern.test(first)) throw new InvalidReferenceError(input, `bad registry host "${first}"`);
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DockerHub;
  if (rest.length === 0) throw new InvalidReferenceError(input, 'missing repository name');
  for (const part of rest.split('/')) {
    if (!pathComponent.test(part))
      throw new InvalidReferenceError(
        input,
        `bad repository name component "${part}" (lowercase letters, digits and separators only)`,
      );
  }
  if (registry === DockerHub && !rest.includes('/')) rest = `library/${rest}`;
  return { registry, repository: rest, tag: tag ?? (digest ? undefined : 'latest'), digest };
}

/** The fully qualified form: docker.io/library/alpine:latest. */
export function formatReference(ref: Reference): string {
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag) s += `:${ref.tag}`;
  if (ref.digest) s += `@${ref.digest}`;
  return s;
}

/** The short form a person types: alpine:latest, localhost:5000/app:1. */
export function familiarName(ref: Reference): string {
  let name =
    ref.registry === DockerHub ? ref.repository.replace(/^library\//, '') : `${ref.registry}/${ref.repository}`;
  if (ref.tag) name += `:${ref.tag}`;
  if (ref.digest) name += `@${ref.digest}`;
  return name;
}

/** The host to connect to for a registry name. */
export function registryHost(registry: string): string {
  return registry === DockerHub ? 'registry-1.docker.io' : registry;
}
