// The context walk bin/tsbuild.cjs starts before the bundle loads, on its own reading of the command line
// (see there), and what a build checks before it takes it. Apart from context.ts so that main() can hand it
// over and end it without loading the context's modules for a command that is no build.
import { trace } from '../trace.js';
import type { SpawnedWalker } from './walk.js';

/**
 * What a context walk is for: the context, the Dockerfile, the store's stat caches, the .dockerignore text
 * in force ('' for none) and tsbuild-walk's path and arguments.
 */
export interface WalkFor {
  dir: string;
  dockerfile: string | undefined;
  statCacheDir: string | undefined;
  ignore: string;
  walker: string | undefined;
  args: string[];
}

/**
 * A tsbuild-walk bin/tsbuild.cjs started before the bundle loaded, on its own reading of the command line:
 * a guess, which a build takes only when it is for exactly the walk the build would start (sameWalk).
 */
export interface EarlyWalk extends WalkFor {
  spawned: SpawnedWalker;
}

/** Whether walk `a` is the walk `b`: every part of what it is for the same. */
export function sameWalk(a: WalkFor, b: WalkFor): boolean {
  return (
    a.dir === b.dir &&
    a.dockerfile === b.dockerfile &&
    a.statCacheDir === b.statCacheDir &&
    a.ignore === b.ignore &&
    a.walker === b.walker &&
    a.args.length === b.args.length &&
    a.args.every((x, i) => x === b.args[i])
  );
}

let pending: EarlyWalk | undefined;

/** main(): the walk bin/tsbuild.cjs started, for the build to take (takeEarlyWalk) or for dropEarlyWalk. */
export function adoptEarlyWalk(w: EarlyWalk | undefined): void {
  pending = w;
}

/** The loader's walk, once: whoever takes it ends it (ContextStart uses or drops it). */
export function takeEarlyWalk(): EarlyWalk | undefined {
  const w = pending;
  pending = undefined;
  return w;
}

/** End of the command: a loader's walk no build took is killed and reaped. */
export async function dropEarlyWalk(): Promise<void> {
  const w = takeEarlyWalk();
  if (w) await dropEarly(w);
}

/** A loader's walk no build will read: killed, reaped, its output files closed. */
export async function dropEarly(w: EarlyWalk): Promise<void> {
  trace('context walk started by the loader: not for this build, killed');
  await (await import('./walk.js')).dropWalker(w.spawned);
}
