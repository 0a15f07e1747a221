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
