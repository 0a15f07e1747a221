// Process liveness: a pid names a process only together with its start time, because pids are reused.
// Whatever records an owner (a lock holder, a lease, a temp file, a container's runner) records both,
// and asks pidAlive(pid, start) later.
import { readFileSync } from 'node:fs';

/** What /proc/<pid>/stat tells of a process: its state letter, parent, and start time (see processStart). */
export interface ProcessStat {
  state: string;
  ppid: number;
  start: string;
}

/** /proc/<pid>/stat parsed, zombies included; undefined when there is no such process. */
export function processStat(pid: number | 'self' = 'self'): ProcessStat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); // a few hundred bytes: sync is cheaper than a thread-pool trip
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count from its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field 4 (ppid) is fields[1] and field 22 (start time) fields[19].
  if (fields.length < 20) return undefined;
  return { state: fields[0], ppid: Number(fields[1]), start: fields[19] };
}

/**
 * Field 22 of /proc/<pid>/stat: the start time in clock ticks since boot, which tells a reused pid
 * apart. undefined when there is no such process or it has ended (a zombie, or a dead task).
 */
export function processStart(pid: number | 'self' = 'self'): string | undefined {
  const s = processStat(pid);
  return s === undefined || s.state === 'Z' || s.state === 'X' ? undefined : s.start;
}

let self: string | undefined;
/** This process's start time ('0' where /proc cannot tell). */
export function selfStart(): string {
  return (self ??= processStart('self') ?? '0');
}

/**
 * Whether the process `pid` is alive and, when `start` is given, is the one that started then (not a
 * later process that reuses the pid). A process of another user counts (kill answers EPERM). A zombie
 * does not: it has ended and holds nothing any more, though kill(pid, 0) succeeds until its parent
 * reaps it, which an orphan's reaper (init, or a container's PID 1) may do seconds later, or never.
 */
export function pidAlive(pid: number, start?: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start === undefined) {
    const state = processStat(pid)?.state;
    // Without a readable /proc (state undefined) nothing can be told apart: rather keep what may be alive.
    return state !== 'Z' && state !== 'X';
  }
  const now = processStart(pid);
  // Without a readable /proc nothing can be told apart: rather keep what may be alive.
  if (now === undefined) return selfStart() === '0';
  return now === start;
}
