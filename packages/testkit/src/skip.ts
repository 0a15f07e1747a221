// uvu has no skip: a test that returns early is counted as passed. These helpers make a skip
// visible to scripts/run-tests.mjs, which counts every marker line as a skip (not a pass) and
// prints it with its reason; under CI (CI=true) a skip for something `scripts/setup.sh --test`
// installs is a failure instead, because CI must run every check.
import { spawnSync } from 'node:child_process';

/** The line the runner looks for, one per skipped test, on stdout. */
export const SKIP_MARKER = 'TSBUILD-SKIP:';

export class RequiredInCI extends Error {
  constructor(reason: string) {
    super(`${reason} (required under CI: scripts/setup.sh --test installs it)`);
    this.name = 'RequiredInCI';
  }
}

/**
 * Marks the calling test as skipped, with a reason the runner prints. `required` (the default)
 * means CI must have it: there the call throws, so the test fails instead of passing silently.
 * Use `{ required: false }` only for checks that genuinely cannot run on a CI machine.
 *
 *   if (!have('skopeo')) return skip('skopeo not installed');
 */
export function skip(reason: string, opts: { required?: boolean } = {}): void {
  if ((opts.required ?? true) && process.env.CI) throw new RequiredInCI(reason);
  process.stdout.write(`${SKIP_MARKER} ${reason.replace(/\n/g, ' ')}\n`);
}

/** Whether a command is on PATH. */
export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${JSON.stringify(cmd)}`], { stdio: 'ignore' }).status === 0;
}
