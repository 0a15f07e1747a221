// The supervisor of a detached container: `node supervisor.js STORE_ROOT ID`, started in a session
// of its own by `tsbuild run -d` / `tsbuild start`. It runs the container with its output going
// straight to the log file (the launcher writes it, not Node) and records the exit code in the
// state document when the container ends, whether or not any tsbuild is still around.
import { openSync } from 'node:fs';
import { Store } from '@tsbuild/layerstore';
import { readDoc } from './state.js';
import { runContainer, type StartOutcome } from './runner.js';
import { forwardSignals, tellOnce } from './detached-helper.js';

/** Tells startDetached (on fd 3, a pipe from it) whether the container is running, once; then lets go of it. */
const tell = tellOnce<StartOutcome>();

async function main(): Promise<number> {
  const [root, id] = process.argv.slice(2);
  if (!root || !id) {
    process.stderr.write('usage: supervisor.js STORE_ROOT CONTAINER_ID\n');
    return 2;
  }
  const store = await Store.open(root);
  const doc = await readDoc(store, id);
  if (!doc) return 1;
  const log = openSync(doc.LogPath, 'a');
  // Forward stop signals to the container rather than dying (a dying supervisor would take it along).
  const forwardTo = forwardSignals();
  try {
    const exit = await runContainer(store, id, {
      stdin: 'ignore',
      stdout: log,
      stderr: log,
      detached: true,
      onStart: (p) => {
        forwardTo(p);
        tell({ running: true });
      },
    });
    // Never running: its command could not start (its container removed already with --rm).
    tell({ running: false, code: exit.code, error: exit.startError });
    return 0;
  } catch (e) {
    tell({ running: false, code: 125, error: (e as Error).message });
    process.stderr.write(`tsbuild supervisor: ${(e as Error).message}\n`);
    return 125;
  }
}

main().then(
  (c) => process.exit(c),
  (e) => {
    process.stderr.write(`tsbuild supervisor: ${(e as Error).stack ?? e}\n`);
    process.exit(125);
  },
);
