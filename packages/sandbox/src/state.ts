// Per-run scratch space on the host: <stateDir>/<owner pid>-<n>/ holds the init layer, the per-run
// hosts files and the directory the overlay is mounted on (only inside the run's mount namespace).
// The owner pid in the name lets a later process recognise leftovers of a killed one.
import { accessSync, constants, mkdirSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { cgroupDriver } from './cgroup/index.js';

export function defaultStateDir(): string {
  if (process.env.TSBUILD_SANDBOX_STATE) return process.env.TSBUILD_SANDBOX_STATE;
  try {
    accessSync('/run', constants.W_OK);
    return '/run/tsbuild-sandbox';
  } catch {
    return join(tmpdir(), 'tsbuild-sandbox');
  }
}

let counter = 0;

/** A run id: names the state directory and the cgroup. */
export function newRunId(): string {
  return `${process.pid}-${++counter}-${randomBytes(3).toString('hex')}`;
}

function ownerAlive(id: string): boolean {
  const pid = Number(id.split('-')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function removeRunDir(dir: string): void {
  // The overlay was mounted on root/ only inside the run's own mount namespace, so on the host it is
  // an empty directory. rmdir (not rm -r) first: if something were mounted there, rm -r would
  // delete through it.
  try {
    rmdirSync(join(dir, 'root'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return;
  }
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Removes what runs of dead processes left behind: state directories and cgroups. Safe to call
 * while other tsbuild processes run sandboxes: their runs carry a live owner pid.
 */
export async function cleanupStale(stateDir = defaultStateDir()): Promise<void> {
  let ids: string[] = [];
  try {
    ids = readdirSync(stateDir);
  } catch {
    ids = [];
  }
  for (const id of ids) if (!ownerAlive(id)) removeRunDir(join(stateDir, id));
  await cgroupDriver()?.cleanupStale((id) => !ownerAlive(id));
}

export function makeRunDir(stateDir: string, id: string): string {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const dir = join(stateDir, id);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}
