// Rootless: whether this process runs in a user namespace, and how its ids map to the host's.
//
// Started by an ordinary user, the `tsbuild` command runs the whole CLI in a user namespace of its
// own (the launcher's `userns` mode, native/launcher.c): the user's uid and gid are 0 inside, and
// the subordinate ranges of /etc/subuid and /etc/subgid are 1..N. The sandbox then mounts overlays
// with user.overlay.* xattrs, binds the host's device nodes instead of making them, runs without
// cgroups, and starts slirp4netns from before the network namespace exists (see the launcher).
import { accessSync, constants, readFileSync } from 'node:fs';

export interface IdMapping {
  /** First id inside the namespace. */
  inside: number;
  /** The host id it is. */
  outside: number;
  count: number;
}

export interface UserNamespace {
  uids: IdMapping[];
  gids: IdMapping[];
  /** The host uid and gid that are root inside (the user who started tsbuild). */
  hostUid: number;
  hostGid: number;
  /** Only one id of each kind is mapped: files of any other owner cannot exist inside. */
  single: boolean;
}

function parseMap(text: string): IdMapping[] {
  const out: IdMapping[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length === 3 && f.every((n) => Number.isInteger(n) && n >= 0))
      out.push({ inside: f[0], outside: f[1], count: f[2] });
  }
  return out;
}

function readMap(kind: 'uid' | 'gid'): IdMapping[] {
  try {
    return parseMap(readFileSync(`/proc/self/${kind}_map`, 'utf8'));
  } catch {
    return [{ inside: 0, outside: 0, count: 4294967295 }];
  }
}

function isInitial(map: IdMapping[]): boolean {
  return map.length === 1 && map[0].inside === 0 && map[0].outside === 0 && map[0].count === 4294967295;
}

/** The host id that `id` (inside) is, or undefined where it is not mapped. */
export function toHost(map: readonly IdMapping[], id: number): number | undefined {
  for (const m of map) if (id >= m.inside && id < m.inside + m.count) return m.outside + (id - m.inside);
  return undefined;
}

let cached: UserNamespace | null | undefined;

/** The user namespace this process runs in, or undefined in the host's own (tsbuild run by root). */
export function userNamespace(): UserNamespace | undefined {
  if (cached === undefined) {
    const uids = readMap('uid');
    const gids = readMap('gid');
    if (isInitial(uids)) cached = null;
    else {
      const total = (m: IdMapping[]) => m.reduce((n, x) => n + x.count, 0);
      cached = {
        uids,
        gids,
        hostUid: toHost(uids, 0) ?? process.getuid?.() ?? 0,
        hostGid: toHost(gids, 0) ?? process.getgid?.() ?? 0,
        single: total(uids) <= 1 || total(gids) <= 1,
      };
    }
  }
  return cached ?? undefined;
}

/** tsbuild runs rootless: in a user namespace, not as the host's root. */
export function rootless(): boolean {
  return userNamespace() !== undefined;
}

/** The uid that owns this process's files on the host (the user who ran tsbuild). */
export function hostUid(): number {
  return userNamespace()?.hostUid ?? process.getuid?.() ?? 0;
}

/** slirp4netns opens /dev/net/tun as the user (rootless): it must be open to them. */
export function tunUsable(): boolean {
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export const tunAdvice =
  'rootless: /dev/net/tun is not readable and writable by you, so slirp4netns cannot give RUN steps ' +
  'and containers their private network (udev makes it 0666; as root: chmod 0666 /dev/net/tun); ' +
  'or use --network none';

const warned = new Set<string>();

/** Prints a warning once per process (what rootless mode cannot do here). */
export function warnOnce(key: string, message: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  process.stderr.write(`tsbuild: warning: ${message}\n`);
}
