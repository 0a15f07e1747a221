// The first word of a detached helper (supervisor.ts, exec-detached.ts) to the process that started it: one JSON
// line on fd 3, a pipe from the starter, which waits for it to learn whether the start worked.
import { closeSync, writeSync } from 'node:fs';

/** A function that writes its first outcome on fd 3 and closes it; later calls do nothing. */
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
