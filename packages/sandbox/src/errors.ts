// The sandbox's errors, apart from run.ts so that network.ts, exec.ts and freeze.ts can throw them
// without importing the runner (run.ts starts networks: that was an import cycle).
import type { Coded } from '@tsbuild/errdefs';

/** The sandbox could not be built (a host problem, not the command's): carries the launcher's reason. */
export class SandboxError extends Error implements Coded {
  readonly errdef = 'unavailable';
  constructor(message: string) {
    super(`sandbox: ${message}`);
    this.name = 'SandboxError';
  }
}

export function abortError(signal: AbortSignal): Error {
  const e = new Error('sandbox: run aborted', { cause: signal.reason });
  e.name = 'AbortError';
  return e;
}
