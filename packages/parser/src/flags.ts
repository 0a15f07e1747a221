import type { Instruction } from './ast.js';
import { DockerfileError } from './errors.js';
import type { At } from './errors.js';

type Kind = 'bool' | 'string' | 'strings';

/** The flags each instruction accepts; everything else is an error, as in BuildKit. */
const accepted: Record<string, Record<string, Kind>> = {
  FROM: { platform: 'string' },
  RUN: { mount: 'strings', network: 'string', security: 'string' },
  COPY: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' },
  ADD: {
    chown: 'string',
    chmod: 'string',
    link: 'bool',
    'keep-git-dir': 'bool',
    checksum: 'string',
    exclude: 'strings',
    unpack: 'bool',
  },
  HEALTHCHECK: {
    interval: 'string',
    timeout: 'string',
    'start-period': 'string',
    'start-interval': 'string',
    retries: 'string',
  },
};

/**
 * Flags BuildKit's stable frontend does not take but users meet in the docs
 * (labs-only or not supported here): a clearer error than "unknown flag".
 */
const unsupported: Record<string, Record<string, string>> = {
  RUN: {
    device:
      'RUN --device is not supported: it needs the docker/dockerfile:1-labs frontend and a device entitlement, ' +
      'neither of which tsbuild provides',
  },
};

export interface Flags {
  string(name: string): string | undefined;
  bool(name: string): boolean | undefined;
  strings(name: string): string[];
}

/** BuildKit's BFlags.Parse for one instruction's `--flags`. */
export function parseFlags(node: Instruction): Flags {
  const kinds = accepted[node.keyword] ?? {};
  const values = new Map<string, string | boolean | string[]>();
  const seen = new Map<string, number>();
  let at: At = { kind: 'keyword' };
  const fail = (code: string, message: string, where: At = at): never => {
    throw new DockerfileError(code, message, node.location, { cmd: node.cmd, at: where });
  };
  for (const arg of node.flags) {
    if (!arg.startsWith('--')) fail('bad-flag', `${node.keyword} flag should start with --: ${arg}`);
    if (arg === '--') break;
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const value = eq < 0 ? undefined : arg.slice(eq + 1);
    const nth = seen.get(name) ?? 0;
    seen.set(name, nth + 1);
    at = { kind: 'flag', name, nth };
    const kind = kinds[name];
    if (!kind) {
      const why = unsupported[node.keyword]?.[name];
      if (why) fail('unsupported-flag', why);
      const names = Object.keys(kinds).map((k) => '--' + k);
      fail(
        'unknown-flag',
        `unknown flag: --${name} (${node.keyword} ${names.length ? 'takes ' + names.join(', ') : 'takes no flags'})`,
      );
    }
    if (values.has(name) && kind !== 'strings') fail('duplicate-flag', `duplicate flag specified: --${name}`);
    if (kind === 'bool') {
      if (value === '') fail('bad-flag', `missing a value on flag: --${name}`);
      const v = (value ?? 'true').toLowerCase();
      if (v !== 'true' && v !== 'false')
        fail('bad-flag', `expecting boolean value for flag --${name}, not: ${value}`, { ...at, value: true });
      values.set(name, v === 'true');
    } else {
      if (value === undefined) fail('bad-flag', `missing a value on flag: --${name}`);
      if (kind === 'string') values.set(name, value!);
      else values.set(name, [...((values.get(name) as string[] | undefined) ?? []), value!]);
    }
  }
  return {
    string: (n) => values.get(n) as string | undefined,
    bool: (n) => values.get(n) as boolean | undefined,
    strings: (n) => (values.get(n) as string[] | undefined) ?? [],
  };
}
