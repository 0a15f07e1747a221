// Volumes: directories in the store that outlive containers.
//   <store>/volumes/<name>/_data       what is mounted
//   <store>/volumes/<name>/volume.json { Name, Anonymous, CreatedAt }
// A volume is seeded from the image's content at its mount point when it is first created (as
// docker does), so `VOLUME /data` after files were put in /data keeps them visible.
import { promises as fsp } from 'node:fs';
import { join, posix } from 'node:path';
import { randomBytes } from 'node:crypto';
import { isOpaque, type Layer, type Store } from '@tsbuild/layerstore';
import { removeTreeBeneath } from '@tsbuild/sys';
import { flattenInto, RootView } from '@tsbuild/sandbox';
import { ContainerError, listDocs } from './state.js';

export interface VolumeInfo {
  Name: string;
  Anonymous: boolean;
  CreatedAt: string;
  Mountpoint: string;
}

export function volumesDir(store: Store): string {
  return join(store.root, 'volumes');
}

const validName = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function isVolumeName(s: string): boolean {
  return validName.test(s);
}

export async function getVolume(store: Store, name: string): Promise<VolumeInfo | undefined> {
  try {
    const meta = JSON.parse(await fsp.readFile(join(volumesDir(store), name, 'volume.json'), 'utf8')) as Omit<
      VolumeInfo,
      'Mountpoint'
    >;
    return { ...meta, Mountpoint: join(volumesDir(store), name, '_data') };
  } catch {
    return undefined;
  }
}

/**
 * The volume `name` (a new anonymous one when name is undefined), created if missing and then
 * seeded with what the image holds at `target`. Returns its info.
 */
export async function ensureVolume(
  store: Store,
  name: string | undefined,
  seed?: { layers: Layer[]; target: string },
): Promise<VolumeInfo> {
  const anonymous = name === undefined;
  const n = name ?? randomBytes(32).toString('hex');
  if (!isVolumeName(n))
    throw new ContainerError(`invalid volume name "${n}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  const existing = await getVolume(store, n);
  if (existing) return existing;
  const dir = join(volumesDir(store), n);
  await fsp.mkdir(volumesDir(store), { recursive: true });
  // Build it aside and rename into place: a half-seeded volume never shows.
  const tmp = `${dir}.${process.pid}.tmp`;
  await fsp.rm(tmp, { recursive: true, force: true });
  await fsp.mkdir(tmp);
  const data = join(tmp, '_data');
  if (seed && seed.layers.length > 0) {
    const view = new RootView((await store.snapshotter.view(seed.layers)).lowerdirs, isOpaque);
    const st = await view.stat(posix.resolve('/', seed.target)).catch(() => undefined);
    if (st && st.stat.isDirectory()) await flattenInto(view, posix.resolve('/', seed.target), data);
  }
  await fsp.mkdir(data, { recursive: true });
  const meta = { Name: n, Anonymous: anonymous, CreatedAt: new Date().toISOString() };
  await fsp.writeFile(join(tmp, 'volume.json'), JSON.stringify(meta, null, 2) + '\n');
  try {
    await fsp.rename(tmp, dir);
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    const other = await getVolume(store, n); // created concurrently by another process
    if (other) return other;
    throw e;
  }
  return { ...meta, Mountpoint: join(dir, '_data') };
}

export async function listVolumes(store: Store): Promise<VolumeInfo[]> {
  let names: string[] = [];
  try {
    names = await fsp.readdir(volumesDir(store));
  } catch {
    return [];
  }
  const out: VolumeInfo[] = [];
  for (const n of names.sort()) {
    const v = await getVolume(store, n);
    if (v) out.push(v);
  }
  return out;
}

/** Names of volumes some container (running or not) refers to. */
export async function volumesInUse(store: Store): Promise<Map<string, string[]>> {
  const used = new Map<string, string[]>();
  for (const d of await listDocs(store)) {
    for (const m of d.Config.mounts) if (m.type === 'volume') used.set(m.name, [...(used.get(m.name) ?? []), d.Name]);
  }
  return used;
}

export async function removeVolume(store: Store, name: string, force = false): Promise<void> {
  const v = await getVolume(store, name);
  if (!v) throw new ContainerError(`No such volume: ${name}`);
  if (!force) {
    const users = (await volumesInUse(store)).get(name);
    if (users) throw new ContainerError(`volume ${name} is in use by container(s) ${users.join(', ')}`);
  }
  // A running container may still change the volume (`-f`): remove beneath directory fds, never
  // following a symlink it swaps in (fs.rm would empty a host directory it points to).
  removeTreeBeneath(join(volumesDir(store), name));
}

/** Removes the volumes no container refers to: anonymous ones, or all with `all`. Returns their names. */
export async function pruneVolumes(store: Store, opts: { all?: boolean } = {}): Promise<string[]> {
  const used = await volumesInUse(store);
  const removed: string[] = [];
  for (const v of await listVolumes(store)) {
    if (used.has(v.Name) || (!v.Anonymous && !opts.all)) continue;
    await removeVolume(store, v.Name, true);
    removed.push(v.Name);
  }
  return removed;
}
