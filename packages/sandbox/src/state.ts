// Per-run scratch space on the host: <stateDir>/<owner pid>-<n>/ holds the init layer, the per-run
// hosts files and the directory the overlay is mounted on (only inside the run's mount namespace).
// The owner pid in the name lets a later process recognise leftovers of a killed one.
import { accessSync, constants, lstatSync, mkdirSync, readdirSync, rmSync, rmdirSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pidAlive } from '@tsbuild/sys';
import { cgroupDriver } from './cgroup/index.js';
import { hostUid } from './userns.js';

const TMPFS_MAGIC = 0x01021994;

function isTmpfs(path: string): boolean {
  try {
    return statfsSync(path).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

export function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** `dir` is ours: a real directory (not a link) of this uid that nobody else can write to. */
function ownDir(dir: string): boolean {
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/**
 * Our directory in a world-writable sticky one (/dev/shm), made now so that nobody can take the
 * name between this check and its use: the sticky bit keeps others from renaming or removing it.
 */
function claimDir(dir: string): boolean {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return false;
  }
  return ownDir(dir);
}

let chosen: string | undefined;

/** A place the state directory may go; chooseStateDir() takes the first that fits. */
export interface StateCandidate {
  /** The state directory; its parent must be writable. */
  dir: string;
  /** Only where the parent is a tmpfs. */
  tmpfs?: boolean;
  /**
   * The parent is world-writable and sticky (/dev/shm): the directory is made now and used only
   * if it is then a real directory of ours that nobody else can write to.
   */
  claim?: boolean;
}

/**
 * Every run makes a dozen small files and directories here and removes them after. On a tmpfs
 * that is nothing; on a disk it is inode churn, and on ext4 without a journal each new inode then
 * scans the group's recently freed ones (a sixth of a RUN's CPU time on the bench machine, whose
 * /run is not a tmpfs). So: /run where it is a tmpfs (most systems), else /dev/shm where it is
 * one and our directory there is safe from other users (the directory is world-writable), else
 * /run, else the temp dir.
 */
export function stateDirCandidates(uid = hostUid()): StateCandidate[] {
  return [
    { dir: '/run/tsbuild-sandbox', tmpfs: true },
    { dir: `/dev/shm/tsbuild-sandbox-${uid}`, tmpfs: true, claim: true },
    { dir: '/run/tsbuild-sandbox' },
  ];
}

export function defaultStateDir(): string {
  if (process.env.TSBUILD_SANDBOX_STATE) return process.env.TSBUILD_SANDBOX_STATE;
  return (chosen ??= chooseStateDir());
}

/**
 * The choice defaultStateDir() makes once per process: the first candidate that fits, else
 * `fallback` (makeRunDir checks whatever is chosen again when it makes the run's directory).
 */
export function chooseStateDir(
  candidates = stateDirCandidates(),
  fallback = join(tmpdir(), 'tsbuild-sandbox'),
): string {
  for (const c of candidates) {
    const parent = dirname(c.dir);
    if (!writable(parent) || (c.tmpfs && !isTmpfs(parent)) || (c.claim && !claimDir(c.dir))) continue;
    return c.dir;
  }
  return fallback;
}

let counter = 0;

/** A run id: names the state directory and the cgroup. */
export function newRunId(): string {
  return `${process.pid}-${++counter}-${randomBytes(3).toString('hex')}`;
}

function ownerAlive(id: string): boolean {
  const pid = Number(id.split('-')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  return pid === process.pid || pidAlive(pid);
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
  // Never list (and remove from) a directory someone else controls, or one a link points to.
  if (ownDir(stateDir)) {
    try {
      ids = readdirSync(stateDir);
    } catch {
      ids = [];
    }
  }
  for (const id of ids) if (!ownerAlive(id)) removeRunDir(join(stateDir, id));
  await cgroupDriver()?.cleanupStale((id) => !ownerAlive(id));
}

export { isTmpfs };

export function makeRunDir(stateDir: string, id: string): string {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  // Checked after mkdir too: someone else may have made it between the choice and now.
  if (!ownDir(stateDir))
    throw new Error(
      `sandbox: the state directory ${stateDir} is not a directory of this user that only it can write to`,
    );
  const dir = join(stateDir, id);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}
