// `tsbuild commit`: the container's upper dir becomes one more layer on top of its image, read
// exactly as a build step's diff is (overlay whiteouts and opaque dirs → OCI whiteouts). What
// belongs to the container and not to the image is left out: /etc/hosts, /etc/resolv.conf,
// /etc/hostname and every mount point (and what is under it).
import type { Layer, Store, Image } from '@tsbuild/layerstore';
import { entriesFromDirectory, writeLayer, type Entry } from '@tsbuild/layerstore/layer';
import { parse, buildGraph } from '@tsbuild/parser';
import { applyStep, inheritConfig, type StageConfig } from '../image/config.js';
import { freezeSandbox, type Thaw } from '@tsbuild/sandbox';
import { ContainerError, alive, isRunning, refresh, type ContainerDoc } from './state.js';

export const containerOnly = ['etc/hosts', 'etc/resolv.conf', 'etc/hostname'];

async function* filtered(src: AsyncIterable<Entry>, excluded: string[]): AsyncGenerator<Entry> {
  for await (const e of src) {
    const p = e.path.replace(/\/$/, '');
    if (excluded.some((x) => p === x || p.startsWith(x + '/'))) continue;
    yield e;
  }
}

/** Applies Dockerfile-like changes (`CMD ["sh"]`, `ENV A=1`, ...) to a config. */
export function applyChanges(state: StageConfig, changes: string[]): void {
  if (changes.length === 0) return;
  const allowed = new Set([
    'cmd',
    'entrypoint',
    'env',
    'expose',
    'label',
    'user',
    'workdir',
    'volume',
    'stopsignal',
    'onbuild',
    'shell',
    'healthcheck',
  ]);
  let graph;
  try {
    graph = buildGraph(parse(`FROM scratch\n${changes.join('\n')}\n`, { file: '--change' }), { file: '--change' });
  } catch (e) {
    throw new ContainerError(`--change: ${(e as Error).message}`);
  }
  for (const step of graph.stages[0]!.steps as { kind: string }[]) {
    if (!allowed.has(step.kind))
      throw new ContainerError(
        `--change: ${step.kind.toUpperCase()} is not allowed (only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL, ONBUILD, SHELL, HEALTHCHECK)`,
      );
    applyStep(state, step as Parameters<typeof applyStep>[1]);
  }
}

/**
 * Stops every process of a running container until the returned thaw is called. The upperdir is
 * walked by path: a process left running could swap a directory for a symlink to a host directory
 * between two steps of the walk (renameat2 RENAME_EXCHANGE) and so get host files into the layer.
 * Docker pauses a container for a commit too.
 */
async function freezeIfRunning(store: Store, doc: ContainerDoc): Promise<Thaw> {
  const d = await refresh(store, doc);
  if (isRunning(d)) {
    try {
      return await freezeSandbox(d.State.Pid!);
    } catch (e) {
      const why = (e as Error).message;
      throw new ContainerError(`cannot freeze container ${d.Name} for the commit (${why}): stop it first`);
    }
  }
  if (d.State.Status === 'created' && alive(d.State.Runner, d.State.RunnerStart)) {
    throw new ContainerError(`container ${d.Name} is starting: commit it once it runs or has stopped`);
  }
  return () => {};
}

export async function commitContainer(
  store: Store,
  doc: ContainerDoc,
  opts: { changes: string[]; message?: string; author?: string },
): Promise<Image> {
  const image = await store.images.get(doc.Image);
  if (!image) throw new ContainerError(`the image of container ${doc.Name} (${doc.Image}) is no longer in the store`);
  const excluded = [...containerOnly, ...doc.Config.mounts.map((m) => m.target.replace(/^\/+/, ''))];
  const thaw = await freezeIfRunning(store, doc);
  let layer: Layer;
  try {
    const entries = filtered(entriesFromDirectory(doc.UpperDir, { overlay: true }), excluded);
    layer = await writeLayer(store.blobs, entries, { compression: 'gzip' });
  } finally {
    thaw();
  }
  const state: StageConfig = { image: inheritConfig(image.config), cmdSet: false } as StageConfig;
  applyChanges(state, opts.changes);
  const config = state.image;
  const now = new Date().toISOString();
  config.created = now;
  if (opts.author) config.author = opts.author;
  config.rootfs = { type: 'layers', diff_ids: [...image.layers.map((l) => l.diffID), layer.diffID] };
  config.history = [
    ...(config.history ?? []),
    {
      created: now,
      created_by: `tsbuild commit ${doc.Name}${opts.changes.length ? ` --change ${JSON.stringify(opts.changes)}` : ''}`,
      ...(opts.message ? { comment: opts.message } : {}),
    },
  ];
  return store.images.write({ config, layers: [...image.layers, layer] });
}
