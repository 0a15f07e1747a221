// Where the compiled C launcher lives (see native/launcher.c for why it exists).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let found: string | undefined;

const pkg = '@tsbuild/sandbox';
const inPackage = join('native', 'build', 'tsbuild-launcher');

/**
 * Found through the package, not relative to this file: the tsbuild CLI is bundled into one
 * file elsewhere, and the package root is where native/build is, however this code is loaded.
 */
export function launcherPath(): string {
  if (process.env.TSBUILD_LAUNCHER) return process.env.TSBUILD_LAUNCHER;
  // Resolved once, and first as Node's resolver would find the package from here (the nearest
  // node_modules/@tsbuild/sandbox above this file), a few stats: the resolver itself costs 2-3 ms of
  // a container's start (it sets up and runs the CommonJS lookup), as much as the container's process.
  return (found ??= nearest() ?? resolved());
}

/** What resolving the package from this file finds: itself (in one of its files), else the nearest node_modules. */
function nearest(): string | undefined {
  if (!import.meta.url.startsWith('file:')) return undefined;
  const here = dirname(fileURLToPath(import.meta.url));
  const dirs: string[] = [];
  for (let dir = here; dirs.at(-1) !== dir; dir = dirname(dir)) dirs.push(dir);
  const scope = dirs.find((d) => existsSync(join(d, 'package.json')));
  if (scope)
    try {
      if ((JSON.parse(readFileSync(join(scope, 'package.json'), 'utf8')) as { name?: string }).name === pkg)
        return join(scope, inPackage);
    } catch {
      return undefined;
    }
  for (const d of dirs) {
    const p = join(d, 'node_modules', pkg, inPackage);
    if (existsSync(p)) return p;
  }
  return undefined;
}

function resolved(): string {
  return join(dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`)), inPackage);
}

export function launcherExists(): boolean {
  return existsSync(launcherPath());
}
