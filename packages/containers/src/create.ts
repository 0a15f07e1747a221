// Creating a container from an image and `run` flags: the config is resolved once (Entrypoint+Cmd
// joined as docker does, Env/WorkingDir/User from the image overridden by flags, volumes made and
// seeded), and written with the container's directories.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, posix, relative, resolve } from 'node:path';
import { chainIDs, DEFAULT_PATH, isOpaque, type ActiveSnapshot, type Image, type Store } from '@tsbuild/layerstore';
import { asContainerProcess, resolveUser, RootView, type Limits, type PortMapping } from '@tsbuild/sandbox';
import { applyEnv } from './env.js';
import {
  ContainerError,
  containerDir,
  containerLease,
  listDocs,
  newId,
  randomName,
  runnerState,
  writeNewDoc,
} from './state.js';
import type { ContainerDoc, MountSpec } from './state.js';
import { ensureVolume, isVolumeName } from './volumes.js';
import { parseMount, type MountRequest } from './mount-flag.js';

export interface CreateOptions {
  ref: string;
  image: Image;
  cmd: string[];
  entrypoint?: string;
  name?: string;
  env: string[];
  envFiles: string[];
  workdir?: string;
  user?: string;
  volumes: string[];
  /** --mount specs (mount-flag.ts), after the -v ones. */
  mounts?: string[];
  network: string;
  ports?: PortMapping[];
  hostname?: string;
  tty: boolean;
  interactive: boolean;
  limits: Limits;
  autoRemove: boolean;
  init?: boolean;
}

export function readEnvFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ContainerError(`--env-file ${path}: ${(e as Error).message}`);
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.replace(/^\s+/, ''))
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** -v HOST:CTR[:ro|rw], -v NAME:CTR[:ro|rw], -v CTR */
export function parseVolume(spec: string): MountRequest & { kind: 'bind' | 'volume' } {
  const parts = spec.split(':');
  let mode: string | undefined;
  if (parts.length >= 2 && /^(ro|rw|z|Z|ro,.*|rw,.*)$/.test(parts[parts.length - 1])) mode = parts.pop();
  const readonly = mode?.split(',').includes('ro') ?? false;
  if (parts.length === 1) {
    if (!parts[0].startsWith('/')) throw new ContainerError(`-v ${spec}: a container path must be absolute`);
    return { kind: 'volume', target: posix.resolve(parts[0]), readonly };
  }
  if (parts.length !== 2)
    throw new ContainerError(`-v ${spec}: expected HOST:CONTAINER[:ro], NAME:CONTAINER[:ro] or CONTAINER`);
  const [src, tgt] = parts as [string, string];
  if (!tgt.startsWith('/')) throw new ContainerError(`-v ${spec}: the container path must be absolute`);
  if (src.startsWith('/') || src.startsWith('.') || src.startsWith('~')) {
    const source = resolve(src.replace(/^~(?=\/|$)/, process.env.HOME ?? '~'));
    // A missing one is made when the container starts, as docker makes it (--mount type=bind refuses it).
    return { kind: 'bind', source, target: posix.resolve(tgt), readonly, create: true };
  }
  if (!isVolumeName(src)) throw new ContainerError(`-v ${spec}: "${src}" is not a valid volume name`);
  return { kind: 'volume', name: src, target: posix.resolve(tgt), readonly };
}

/** Creates the container `o` describes (state: created), under the store's `containers` lock: names are unique. */
export async function createContainer(store: Store, o: CreateOptions): Promise<ContainerDoc> {
  const c = await store.withLock('containers', () => create(store, o, false));
  await c.synced;
  return c.doc;
}

/** A container made by createToRun, its document's fsyncs and its active snapshot, for runContainer (RunIO). */
export interface Created {
  doc: ContainerDoc;
  synced: Promise<void>;
  root: ActiveSnapshot;
}

/**
 * createContainer for a container that this process runs at once, in the foreground: its document names this
 * process its runner from the start (runContainer then has nothing to write before it starts), and is fsynced
 * while runContainer prepares it (writeNewDoc): both were on the way to the container's start.
 */
export function createToRun(store: Store, o: CreateOptions): Promise<Created> {
  return store.withLock('containers', () => create(store, o, true));
}

async function create(store: Store, o: CreateOptions, runHere: boolean): Promise<Created> {
  const cfg = o.image.config.config ?? {};
  const entrypoint = o.entrypoint !== undefined ? (o.entrypoint === '' ? [] : [o.entrypoint]) : (cfg.Entrypoint ?? []);
  const args = o.cmd.length ? o.cmd : o.entrypoint !== undefined ? [] : (cfg.Cmd ?? []);
  const argv = [...entrypoint, ...args];
  if (argv.length === 0) throw new ContainerError('No command specified');

  let env = cfg.Env ?? [`PATH=${DEFAULT_PATH}`];
  if (!env.some((e) => e.startsWith('PATH='))) env = [`PATH=${DEFAULT_PATH}`, ...env];
  for (const f of o.envFiles) env = applyEnv(env, readEnvFile(f));
  env = applyEnv(env, o.env);

  const image = await store.snapshotter.view(o.image.layers);
  const view = new RootView(image.lowerdirs, isOpaque);
  const userSpec = o.user ?? cfg.User ?? '';
  let userError: string | undefined;
  const who = await resolveUser(view, userSpec || undefined).then(asContainerProcess, (e) => {
    userError = (e as Error).message;
    return { uid: 0, gid: 0, additionalGids: [], home: undefined };
  });
  const cwd = posix.resolve('/', o.workdir ?? (cfg.WorkingDir || '/'));
  await refuseFileWorkdir(view, cwd);
  const id = newId();
  const hostname = o.hostname ?? id.slice(0, 12);
  if (!env.some((e) => e.startsWith('HOSTNAME='))) env = [...env, `HOSTNAME=${hostname}`];
  if (o.tty && !env.some((e) => e.startsWith('TERM='))) env = [...env, 'TERM=xterm'];

  const docs = await listDocs(store);
  const name = o.name ?? randomName();
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new ContainerError(`invalid container name "${name}"`);
  if (docs.some((d) => d.Name === name)) throw new ContainerError(`the container name "${name}" is already in use`);

  // Mounts: -v flags first, then --mount ones; the image's VOLUMEs not covered by one get an anonymous volume.
  // All are read before a volume is made: a bad flag leaves none behind.
  const requests: MountRequest[] = [...o.volumes.map(parseVolume), ...(o.mounts ?? []).map(parseMount)];
  const mounts: MountSpec[] = [];
  const seed = (target: string) => ({ layers: o.image.layers, target });
  for (const [i, p] of requests.entries())
    if (requests.findIndex((q) => q.target === p.target) < i)
      throw new ContainerError(`duplicate mount point: ${p.target}`);
  for (const p of requests) {
    if (p.kind === 'bind')
      mounts.push({
        type: 'bind',
        source: p.source,
        target: p.target,
        readonly: p.readonly,
        ...(p.create ? { create: true } : {}),
        ...(p.nonrecursive ? { nonrecursive: true } : {}),
      });
    else if (p.kind === 'tmpfs') {
      const { kind: _, ...tmpfs } = p;
      mounts.push({ type: 'tmpfs', ...tmpfs });
    } else {
      const vol = await ensureVolume(store, p.name, p.nocopy ? undefined : seed(p.target));
      mounts.push({ type: 'volume', name: vol.Name, target: p.target, readonly: p.readonly, anonymous: vol.Anonymous });
    }
  }
  for (const t of Object.keys(cfg.Volumes ?? {})) {
    const target = posix.resolve('/', t);
    if (mounts.some((m) => m.target === target)) continue;
    const vol = await ensureVolume(store, undefined, seed(target));
    mounts.push({ type: 'volume', name: vol.Name, target, readonly: false, anonymous: true });
  }

  // Its writable layer: an active snapshot of the store's snapshotter, in the container's directory.
  const dir = containerDir(store, id);
  const active = await store.snapshotter.prepare(dir, image);
  // The container keeps its image while it exists, even untagged: a lease that lives as long as its
  // directory (made above) does. This command's own lease holds the image until then.
  const lease = store.leases.forPath(containerLease(id), relative(store.root, dir), 'container');
  await lease.reuse('blob', [o.image.manifestDigest, o.image.configDigest, ...o.image.layers.map((l) => l.digest)]);
  await lease.reuse('snapshot', chainIDs(o.image.layers.map((l) => l.diffID)));
  const doc: ContainerDoc = {
    Id: id,
    Name: name,
    Created: new Date().toISOString(),
    Image: o.image.manifestDigest,
    ImageID: o.image.configDigest,
    Config: {
      image: { ref: o.ref, manifestDigest: o.image.manifestDigest, configDigest: o.image.configDigest },
      argv,
      env,
      cwd,
      user: userSpec,
      uid: who.uid,
      gid: who.gid,
      additionalGids: who.additionalGids ?? [],
      home: who.home,
      ...(userError !== undefined ? { userError } : {}),
      hostname,
      network: o.network,
      ports: o.ports ?? [],
      tty: o.tty,
      interactive: o.interactive,
      limits: o.limits,
      mounts,
      autoRemove: o.autoRemove,
      ...(o.init ? { init: true } : {}),
    },
    State: runHere ? runnerState(process.pid, false, o.autoRemove) : { Status: 'created' },
    LogPath: join(dir, 'container.log'),
    UpperDir: active.upperdir,
    WorkDir: active.workdir,
  };
  // Synchronous, as state.ts reads documents: a few kB, one call instead of four thread-pool round trips.
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ Id: id, Name: name, Image: doc.Image, ImageID: doc.ImageID, Config: doc.Config }, null, 2) + '\n',
  );
  return { doc, synced: writeNewDoc(store, doc), root: active };
}

/**
 * docker makes the working directory when it creates the container (the process starts in it) and refuses one
 * that is a file, or below one: 125, and no container is left. One that is missing is made at start (makeCwd).
 */
async function refuseFileWorkdir(view: RootView, cwd: string): Promise<void> {
  const parts = cwd.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const dir = '/' + parts.slice(0, i).join('/');
    const e = await view.stat(dir);
    if (!e) return;
    if (!e.stat.isDirectory())
      throw new ContainerError(`Cannot mkdir: ${dir === cwd ? cwd : `${cwd}: ${dir}`} is not a directory`);
  }
}
