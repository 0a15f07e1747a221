// The ARGs BuildKit defines itself (platform built-ins, proxy variables) and its warning for
// --build-arg values nothing asked for: one place for the rules on which names need no ARG.
import type { GraphOptions, Warning } from './types.js';

const proxyArgs = [
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
];
export const PROXY_ARGS: ReadonlySet<string> = new Set(proxyArgs);

/**
 * The environment BuildKit gives every RUN for the proxy build args, declared or not: each of http, https,
 * ftp, no (and all, as BuildKit since 0.10; 20.10's drops it) named in any case, set in both spellings (curl
 * and apt read only `http_proxy`, many tools only `HTTP_PROXY`), over the stage's ENV and ARGs, and not part
 * of the step's cache key unless an ARG declares it. An empty value sets nothing. When one name is given in
 * two spellings BuildKit takes either (map order); here the one that sorts last, for a stable result.
 */
export function proxyEnv(buildArgs: Record<string, string>): string[] {
  const values = new Map<string, string>();
  for (const k of Object.keys(buildArgs).sort()) {
    const name = k.toLowerCase();
    if (/^(http|https|ftp|no|all)_proxy$/.test(name) && buildArgs[k] !== '') values.set(name, buildArgs[k]);
  }
  return [...values].sort().flatMap(([k, v]) => [`${k.toUpperCase()}=${v}`, `${k}=${v}`]);
}

function platformParts(prefix: string, platform: string): [string, string][] {
  const [os = 'linux', arch = 'amd64', variant = ''] = platform.split('/');
  return [
    [`${prefix}PLATFORM`, platform],
    [`${prefix}OS`, os],
    [`${prefix}ARCH`, arch],
    [`${prefix}VARIANT`, variant],
  ];
}

export function builtinArgs(opts: GraphOptions): Map<string, string> {
  const build = opts.buildPlatform ?? 'linux/amd64';
  const target = opts.targetPlatform ?? build;
  return new Map([...platformParts('BUILD', build), ...platformParts('TARGET', target)]);
}

/** BuildKit's warning for --build-arg values no ARG asked for. */
export function unusedArgsWarning(buildArgs: Record<string, string>, declared: Set<string>): Warning | undefined {
  const unused = Object.keys(buildArgs)
    .filter((k) => !declared.has(k) && !PROXY_ARGS.has(k) && !/^(BUILD|TARGET)(PLATFORM|OS|ARCH|VARIANT)$/.test(k))
    .sort();
  if (unused.length === 0) return undefined;
  return { message: `[Warning] One or more build-args [${unused.join(' ')}] were not consumed` };
}
