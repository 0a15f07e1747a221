// What the detached helpers (supervisor.ts for run -d / start, exec-detached.ts for exec -d) share: the first word
// to the process that started them, and the signals they pass on to the process they keep.
import { closeSync, writeSync } from 'node:fs';

/**
 * A function that writes its first outcome as one JSON line on fd 3 (a pipe from the starter, which waits for it
 * to learn whether the start worked) and closes it; later calls do nothing.
 */
export function tellOnce<T>(): (outcome: T) => void {
  let told = false;
  return (outcome) => {
    if (told) return;
    told = true;
    try {
      writeSync(3, JSON.stringify(outcome) + '\n');
      closeSync(3);
    } catch {
      /* started by hand, or its starter is gone */
    }
  };
}

/**
 * Signals that would end the helper (and with it the process it keeps) go to that process instead, as a
 * container's own signals do. Returns where to say the process's pid once it is known (until then: dropped).
 */
export function forwardSignals(): (pid: number) => void {
  let pid = 0;
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) {
    process.on(s, () => {
      if (pid)
        try {
          process.kill(pid, s);
        } catch {
          /* gone */
        }
    });
  }
  return (p) => (pid = p);
}
