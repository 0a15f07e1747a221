// Stand-ins for tsbuild-walk that the context tests run in its place.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A stand-in that never finishes, made in dir: it says its pid through a FIFO (read by the test, so the
 * walker is known to run) and then sleeps in the same process until something kills it.
 */
export function blockingWalker(dir: string): { walker: string; pid: () => Promise<number> } {
  const fifo = join(dir, 'pid');
  execFileSync('mkfifo', [fifo]);
  const walker = join(dir, 'tsbuild-walk');
  writeFileSync(walker, `#!/bin/sh\necho $$ > '${fifo}'\nexec sleep 600\n`, { mode: 0o755 });
  return { walker, pid: async () => Number(await readFile(fifo, 'utf8')) };
}
