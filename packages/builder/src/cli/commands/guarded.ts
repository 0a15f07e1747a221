// What the container commands share: the --root flag, and their one way of failing.
import { ContainerError } from '@tsbuild/containers';
import type { FlagSpec } from '../args.js';
import { UsageError } from '../../errors.js';

export const rootFlag: FlagSpec = { name: 'root', kind: 'string' };

/** Container commands fail with 1 and a one-line message (ContainerError is an expected failure). */
export async function guarded(fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if (e instanceof ContainerError || (e as Error).name === 'SandboxError') {
      process.stderr.write(`Error: ${(e as Error).message}\n`);
      return 1;
    }
    throw e;
  }
}
