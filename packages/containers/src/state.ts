// Container state on disk, shared by every tsbuild process (there is no daemon):
//
//   <store>/containers/<id>.json        the container document (config + status), replaced atomically
//   <store>/containers/<id>/upper, work its active snapshot (the store's snapshotter; overlay upperdir/workdir)
//   <store>/leases/container-<id>.lease what keeps its image's blobs and snapshots from prune: a lease
//                                       that lives as long as <store>/containers/<id> does
//   <store>/containers/<id>/config.json what was asked at create time (never changes)
//   <store>/containers/<id>/container.log output of detached runs
//
// Liveness is never taken on trust: a recorded pid counts only while /proc/PID/stat still shows
// the recorded start time (pids are reused), so a crash of tsbuild, of the supervisor or of the
// container leaves a document that readers correct ("exited", code unknown when nobody saw it).
import {
  closeSync,
  existsSync,
  fsync,
  openSync,
  promises as fsp,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Store } from '@tsbuild/layerstore';
import type { Limits, PortMapping } from '@tsbuild/sandbox';
import type { Code, Coded } from '@tsbuild/errdefs';
import { fsyncDir, ownedId, pidAlive, processStart, writeFileAtomic } from '@tsbuild/sys';

export type MountSpec =
  // create: a -v bind, whose source is made (0755, with its parents) at each start when it is missing.
  // nonrecursive: --mount's bind-nonrecursive, the source without the mounts beneath it.
  | { type: 'bind'; source: string; target: string; readonly: boolean; create?: boolean; nonrecursive?: boolean }
  | { type: 'volume'; name: string; target: string; readonly: boolean; anonymous: boolean }
  // --mount type=tmpfs: size in bytes and the mode of its root, when given.
  | { type: 'tmpfs'; target: string; readonly: boolean; size?: number; mode?: number };

/**
 * What a container runs, resolved once at create time (the image's config merged with the flags).
 * Not the image config's `config` (layerstore's ContainerConfig): this one has the numbers.
 */
export interface ContainerSpec {
  image: { ref: string; manifestDigest: string; configDigest: string };
  argv: string[];
  env: string[];
  cwd: string;
  user: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  /**
   * Why `user` names nobody in the image (uid and gid are then 0, never used). docker creates such a container
   * and fails each start with this (it stays Created): the lookup is made when it starts, and a container that
   * never ran has nothing of its own in /etc/passwd.
   */
  userError?: string;
  /**
   * The HOME its process gets when env has none (users.ts withHome), resolved with uid; added when
   * the process starts, as runc does, so that `exec -u` gets its own user's. Older documents have
   * HOME in env instead.
   */
  home?: string;
  hostname: string;
  network: string;
  /** Published ports (`-p`), forwarded into the container's private network; absent in older documents. */
  ports?: PortMapping[];
  tty: boolean;
  interactive: boolean;
  limits: Limits;
  mounts: MountSpec[];
  autoRemove: boolean;
  /** `--init`: a reaping init is PID 1 in front of the command (absent in older documents: none). */
  init?: boolean;
}

export type Status = 'created' | 'running' | 'exited';

export interface ContainerDoc {
  Id: string;
  Name: string;
  Created: string;
  Image: string;
  ImageID: string;
  Config: ContainerSpec;
  State: {
    Status: Status;
    /** Host pid of the container's init (PID 1 inside) and its start time from /proc/PID/stat. */
    Pid?: number;
    PidStart?: string;
    /** The process that waits for the container and records its end (supervisor or foreground tsbuild). */
    Runner?: number;
    RunnerStart?: string;
    StartedAt?: string;
    FinishedAt?: string;
    /** null: the container ended while nobody watched it, its exit code is unknown. */
    ExitCode?: number | null;
    OOMKilled?: boolean;
    Error?: string;
    Detached?: boolean;
    /**
     * The boot (/proc/sys/kernel/random/boot_id) in which it last ran on a volatile overlay (`--rm`,
     * see runner.ts): a restart in the same boot finds its writable layer intact, after a reboot not.
     */
    VolatileBoot?: string;
  };
  LogPath: string;
  UpperDir: string;
  WorkDir: string;
}

/** The containers' own directory in the store: layerstore knows nothing of it (GC roots are leases). */
export function containersDir(store: Store): string {
  return join(store.root, 'containers');
}
export function docPath(store: Store, id: string): string {
  return join(containersDir(store), `${id}.json`);
}
/** The name of a container's lease (layerstore's leases.ts): it lives as long as containerDir. */
export function containerLease(id: string): string {
  return `container-${id}`;
}

export function containerDir(store: Store, id: string): string {
  return join(containersDir(store), id);
}

export function newId(): string {
  return randomBytes(32).toString('hex');
}

const adjectives = [
  'brave',
  'calm',
  'eager',
  'fancy',
  'gentle',
  'happy',
  'jolly',
  'keen',
  'lucid',
  'merry',
  'nifty',
  'proud',
  'quiet',
  'sharp',
  'tidy',
  'witty',
];
const nouns = [
  'archimedes',
  'babbage',
  'curie',
  'darwin',
  'euler',
  'fermat',
  'gauss',
  'hopper',
  'knuth',
  'lovelace',
  'noether',
  'pascal',
  'ritchie',
  'shannon',
  'turing',
  'wozniak',
];
export function randomName(): string {
  const b = randomBytes(3);
  return `${adjectives[b[0] % adjectives.length]}_${nouns[b[1] % nouns.length]}_${b[2] % 100}`;
}

/**
 * Replaces the document atomically and durably: there is no daemon, so this file is all that says a
 * container exists and how it ended, and it must survive a crash of the host (fsync, rename, fsync dir).
 * `durable: false` keeps the atomic replace without the fsyncs: for the states of a `--rm` container
 * between its creation (durable: a crash leaves a container that ps shows and rm removes) and its
 * removal, which nobody needs after a crash of the host (the container was not running then anyway).
 */
export async function writeDoc(store: Store, doc: ContainerDoc, opts: { durable?: boolean } = {}): Promise<void> {
  const durable = opts.durable ?? true;
  await writeFileAtomic(docPath(store, doc.Id), JSON.stringify(doc, null, 2) + '\n', { durable });
}

/**
 * A new container's document, visible at once and durable a little later: written and renamed into place now
 * (under the containers lock its name is then taken), its fsyncs (the file, then the directory) left to the thread
 * pool while the container is prepared. The promise must settle before the container's process starts: a crash of
 * the host before then leaves at most an empty document, which no reader takes for a container, as a crash during
 * the creation always could. Only for a new id: an existing document could be lost by a crash before the fsync.
 */
export function writeNewDoc(store: Store, doc: ContainerDoc): Promise<void> {
  const tmp = join(containersDir(store), `.${doc.Id}.json.${ownedId()}.tmp`);
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    writeFileSync(fd, JSON.stringify(doc, null, 2) + '\n');
    renameSync(tmp, docPath(store, doc.Id));
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  const synced = new Promise<void>((resolve, reject) =>
    fsync(fd, (e) => {
      closeSync(fd);
      if (e) reject(e);
      else resolve();
    }),
  ).then(() => fsyncDir(containersDir(store)));
  // Awaited by whoever starts the container; until then a failure is not an unhandled rejection.
  synced.catch(() => {});
  return synced;
}

export async function readDoc(store: Store, id: string): Promise<ContainerDoc | undefined> {
  try {
    // Synchronous: a few kB, where fs.promises.readFile is four thread-pool round trips (layerstore's SmallFileIO).
    return JSON.parse(readFileSync(docPath(store, id), 'utf8')) as ContainerDoc;
  } catch {
    return undefined;
  }
}

/** Updates a document in place (read, change, atomic replace). Returns undefined if it is gone. */
export async function updateDoc(
  store: Store,
  id: string,
  change: (d: ContainerDoc) => void,
  opts: { durable?: boolean } = {},
): Promise<ContainerDoc | undefined> {
  const d = await readDoc(store, id);
  if (!d) return undefined;
  change(d);
  await writeDoc(store, d, opts);
  return d;
}

export async function listDocs(store: Store): Promise<ContainerDoc[]> {
  let names: string[] = [];
  try {
    names = await fsp.readdir(containersDir(store));
  } catch {
    return [];
  }
  const out: ContainerDoc[] = [];
  for (const n of names) {
    const m = n.match(/^([0-9a-f]{64})\.json$/);
    if (!m) continue;
    const d = await readDoc(store, m[1]);
    if (d) out.push(d);
  }
  return out.sort((a, b) => b.Created.localeCompare(a.Created));
}

/** An expected failure of a container operation; `failed` unless the site says better. */
export class ContainerError extends Error implements Coded {
  constructor(
    message: string,
    readonly errdef: Code = 'failed',
  ) {
    super(message);
    this.name = 'ContainerError';
  }
}

/** By full id, name, or unique id prefix (as docker does). */
export async function findDoc(store: Store, ref: string): Promise<ContainerDoc> {
  const r = ref.replace(/^\//, '');
  const all = await listDocs(store);
  const exact = all.find((d) => d.Id === r || d.Name === r);
  if (exact) return exact;
  const pre = r.length >= 1 && /^[0-9a-f]+$/.test(r) ? all.filter((d) => d.Id.startsWith(r)) : [];
  if (pre.length === 1) return pre[0];
  if (pre.length > 1) throw new ContainerError(`multiple containers match "${ref}"`);
  throw new ContainerError(`No such container: ${ref}`, 'not-found');
}

export async function tryFindDoc(store: Store, ref: string): Promise<ContainerDoc | undefined> {
  try {
    return await findDoc(store, ref);
  } catch {
    return undefined;
  }
}

/** Whether the process recorded as pid + start time is still that process (sys's pidAlive); false if unrecorded. */
export function alive(pid: number | undefined, start: string | undefined): boolean {
  return pid !== undefined && start !== undefined && pidAlive(pid, start);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The document as it really is: a "running" container whose init is gone is exited. If its runner
 * is still alive it is about to record the exit code (waited for briefly); if the runner died too,
 * nobody saw the end, and the exit code is recorded as unknown (null).
 */
export async function refresh(store: Store, doc: ContainerDoc): Promise<ContainerDoc> {
  let d = doc;
  for (let i = 0; i < 50; i++) {
    if (d.State.Status !== 'running') return d;
    if (alive(d.State.Pid, d.State.PidStart)) return d;
    if (!alive(d.State.Runner, d.State.RunnerStart)) break;
    await sleep(40);
    d = (await readDoc(store, d.Id)) ?? d;
  }
  if (d.State.Status !== 'running' || alive(d.State.Pid, d.State.PidStart)) return d;
  return (
    (await updateDoc(store, d.Id, (x) => {
      if (x.State.Status !== 'running') return;
      x.State.Status = 'exited';
      x.State.ExitCode = null;
      x.State.FinishedAt = new Date().toISOString();
      x.State.Error = x.State.Error ?? 'the container and the process watching it ended unobserved; exit code unknown';
    })) ?? d
  );
}

export function isRunning(d: ContainerDoc): boolean {
  return d.State.Status === 'running' && alive(d.State.Pid, d.State.PidStart);
}

/** Every container as it really is (refreshed), newest first; only the running ones unless `all`. */
export async function listContainers(store: Store, opts: { all?: boolean } = {}): Promise<ContainerDoc[]> {
  const out: ContainerDoc[] = [];
  for (const d of await listDocs(store)) {
    const r = await refresh(store, d);
    if (opts.all || r.State.Status === 'running') out.push(r);
  }
  return out;
}

/**
 * The state of a container that process `runner` is about to start (Runner: the process watching it; a
 * `--rm` container records the boot its volatile overlay belongs to, see refuseLostVolatile).
 */
export function runnerState(runner: number, detached: boolean, volatile: boolean): ContainerDoc['State'] {
  const s: ContainerDoc['State'] = {
    Status: 'created',
    Runner: runner,
    RunnerStart: processStart(runner),
    Detached: detached,
  };
  const boot = volatile ? bootId() : undefined;
  if (boot) s.VolatileBoot = boot;
  return s;
}

/** This boot of the host: a volatile overlay's writable layer survives a restart within it only. */
export function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Whether the container's overlay was mounted volatile (`--rm`): the kernel's marker is in its workdir. */
export function ranVolatile(doc: ContainerDoc): boolean {
  return existsSync(join(doc.WorkDir, 'work', 'incompat', 'volatile'));
}

/**
 * Throws if the container's writable layer was on a volatile overlay in an earlier boot of the host:
 * never synced, it may have lost writes, and is neither run again nor committed (runner.ts, commit.ts).
 */
export function refuseLostVolatile(doc: ContainerDoc): void {
  if (!ranVolatile(doc)) return;
  const boot = bootId();
  if (boot === undefined || doc.State.VolatileBoot !== boot)
    throw new ContainerError(
      `container ${doc.Name} ran with --rm and the host has restarted since: its writable layer was not ` +
        `synced to disk and may have lost writes; remove it (tsbuild rm ${doc.Name})`,
    );
}
