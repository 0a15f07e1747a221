// Where the compiled C launcher lives (see native/launcher.c for why it exists).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * Found through the package, not relative to this file: the tsbuild CLI is bundled into one
 * file elsewhere, and the package root is where native/build is, however this code is loaded.
 */
export function launcherPath(): string {
  if (process.env.TSBUILD_LAUNCHER) return process.env.TSBUILD_LAUNCHER;
  const root = dirname(createRequire(import.meta.url).resolve('@tsbuild/sandbox/package.json'));
  return join(root, 'native', 'build', 'tsbuild-launcher');
}

export function launcherExists(): boolean {
  return existsSync(launcherPath());
}
