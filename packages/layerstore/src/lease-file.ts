// The lease file as prune and check read it: header, entries, and whether its owner still lives.
// Kept apart from the writers (leases.ts) because reading is where a torn or headerless file, a
// reused pid or a vanished container directory must be judged, and that judgement is what keeps
// content alive.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { isDigest, pidAlive } from './fsutil.js';
import type { Digest } from './types.js';

export type LeaseKind = 'blob' | 'snapshot' | 'cache';
export const leaseKinds: readonly LeaseKind[] = ['blob', 'snapshot', 'cache'];

/** A process (pid + start time from /proc/<pid>/stat), or a path relative to the store root. */
export type LeaseOwner = { pid: number; start?: string } | { path: string };

/** A lease file without a readable header (its creator died mid-write) expires after this. */
const HEADERLESS_STALE_MS = 10_000;

export interface LeaseInfo {
  name: string;
  purpose: string;
  owner?: LeaseOwner;
  created?: number;
  live: boolean;
  blob: Set<Digest>;
  snapshot: Set<Digest>;
  cache: Set<Digest>;
}

/** One lease file parsed; undefined when it was dropped meanwhile. */
export async function readLease(dir: string, storeRoot: string, name: string): Promise<LeaseInfo | undefined> {
  const path = join(dir, name);
  let text: string;
  let mtimeMs: number;
  try {
    [text, { mtimeMs }] = await Promise.all([fsp.readFile(path, 'utf8'), fsp.stat(path)]);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // dropped meanwhile
    throw e;
  }
  const lines = text.split('\n');
  lines.pop(); // '' after the last newline, or a torn line being written
  const info: LeaseInfo = { name, purpose: '?', live: true, blob: new Set(), snapshot: new Set(), cache: new Set() };
  const header = parseHeader(lines.shift());
  if (!header) {
    info.live = Date.now() - mtimeMs < HEADERLESS_STALE_MS;
    return info;
  }
  info.purpose = header.purpose;
  info.owner = header.owner;
  info.created = header.created;
  for (const line of lines) {
    const [kind, id] = line.split(' ');
    if (leaseKinds.includes(kind as LeaseKind) && isDigest(id)) info[kind as LeaseKind].add(id);
  }
  info.live = await ownerAlive(storeRoot, header.owner);
  return info;
}

function parseHeader(line: string | undefined): { purpose: string; owner: LeaseOwner; created?: number } | undefined {
  if (!line) return undefined;
  try {
    const h = JSON.parse(line) as Record<'purpose' | 'pid' | 'start' | 'path' | 'created', unknown>;
    const purpose = typeof h.purpose === 'string' ? h.purpose : '?';
    const created = typeof h.created === 'number' ? h.created : undefined;
    if (typeof h.pid === 'number') {
      return { purpose, created, owner: { pid: h.pid, ...(typeof h.start === 'string' ? { start: h.start } : {}) } };
    }
    if (typeof h.path === 'string') return { purpose, created, owner: { path: h.path } };
  } catch {
    /* not a header */
  }
  return undefined;
}

/** Whether a lease's owner lives: its process (same pid AND start time), or its path in the store. */
export async function ownerAlive(storeRoot: string, owner: LeaseOwner): Promise<boolean> {
  if ('pid' in owner) return pidAlive(owner.pid, owner.start);
  if (owner.path.startsWith('/') || owner.path.split('/').includes('..')) return false;
  return fsp.lstat(join(storeRoot, owner.path)).then(
    () => true,
    () => false,
  );
}
