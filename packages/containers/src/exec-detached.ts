// The helper of `tsbuild exec -d`: `node exec-detached.js`, started in a session of its own by execDetached
// (exec.ts) with the process's ExecSpec as JSON on stdin. It starts the process in the container, tells on fd 3
// whether it runs, and stays until it ends: the launcher, and with it the process, dies with whoever spawned it.
// Output goes where this helper's goes (nowhere, as docker exec -d's), and the process ends with the container.
import { readFileSync } from 'node:fs';
import { exec } from '@tsbuild/sandbox';
import type { DetachedOutcome, DetachedRequest } from './exec.js';
import { forwardSignals, tellOnce } from './detached-helper.js';
import { alive } from './state.js';

/** Tells execDetached (on fd 3) whether the process runs, once; then lets go of it. */
const tell = tellOnce<DetachedOutcome>();

async function main(): Promise<number> {
  const { spec, pidStart, name } = JSON.parse(readFileSync(0, 'utf8')) as DetachedRequest;
  // The container may have ended since the CLI saw it running, and its pid been given to another process.
  if (!alive(spec.pid, pidStart)) {
    tell({ running: false, error: `container ${name} is not running` });
    return 1;
  }
  // Signals that would end this helper (and so the process) are the process's to get, as a container's are.
  const forwardTo = forwardSignals();
  try {
    const exit = await exec({
      ...spec,
      stdin: 'ignore',
      stdout: 'inherit',
      stderr: 'inherit',
      onStart: (p) => {
        forwardTo(p);
        tell({ running: true });
      },
    });
    if (exit.startError) tell({ running: false, error: exit.startError });
    // Ended before its start was reported: it ran (a start error says so), briefly.
    tell({ running: true });
    return 0;
  } catch (e) {
    tell({ running: false, error: (e as Error).message });
    return 125;
  }
}

main().then(
  (c) => process.exit(c),
  (e) => {
    tell({ running: false, error: String((e as Error).message ?? e) });
    process.exit(125);
  },
);
