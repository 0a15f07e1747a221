// Where the compiled C launcher lives (see native/launcher.c for why it exists).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

let found: string | undefined;

/**
 * Found through the package, not relative to this file: the tsbuild CLI is bundled into one
 * file elsewhere, and the package root is where native/build is, however this code is loaded.
 */
export function launcherPath(): string {
  if (process.env.TSBUILD_LAUNCHER) return process.env.TSBUILD_LAUNCHER;
  // Resolved once: a resolution walks node_modules (milliseconds), and a container start takes two launchers.
  return (found ??= join(
    dirname(createRequire(import.meta.url).resolve('@tsbuild/sandbox/package.json')),
    'native',
    'build',
    'tsbuild-launcher',
  ));
}

export function launcherExists(): boolean {
  return existsSync(launcherPath());
}
