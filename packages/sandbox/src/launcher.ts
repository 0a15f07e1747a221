// Where the compiled C launcher lives (see native/launcher.c for why it exists).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function launcherPath(): string {
  if (process.env.TSBUILD_LAUNCHER) return process.env.TSBUILD_LAUNCHER;
  // dist/src/launcher.js -> native/build/tsbuild-launcher
  return fileURLToPath(new URL('../../native/build/tsbuild-launcher', import.meta.url));
}

export function launcherExists(): boolean {
  return existsSync(launcherPath());
}
