// `tsbuild commit`: the container's active snapshot becomes one more layer on top of its image,
// committed by the store's snapshotter as a RUN step's is (overlay whiteouts and opaque dirs → OCI
// whiteouts). What belongs to the container and not to the image is left out: /etc/hosts,
// /etc/resolv.conf, /etc/hostname and every mount point (and what is under it).
import type { Image, ImageConfig, Store } from '@tsbuild/layerstore';
import { freezeSandbox, type Thaw } from '@tsbuild/sandbox';
import { ContainerError, alive, isRunning, refresh, refuseLostVolatile, type ContainerDoc } from './state.js';

export const containerOnly = ['etc/hosts', 'etc/resolv.conf', 'etc/hostname'];

export interface CommitContainerOptions {
  /**
   * The new image's config from its image's (a copy, to change and return): the caller applies
   * `--change` there with the Dockerfile's rules, which this package does not know.
   */
  configure: (base: ImageConfig) => ImageConfig;
  /** The `--change` instructions, for the history entry. */
  changes?: string[];
  message?: string;
  author?: string;
  /**
   * Pause a running container for the commit (default true, as docker's `commit --pause`). false
   * reads its upperdir while it runs, beneath the directory's fd (a directory it swaps for a
   * symlink is not followed: the commit fails instead), so files it changes meanwhile may be
   * caught half-written, as with docker.
   */
  pause?: boolean;
}

/**
 * Stops every process of a running container until the returned thaw is called. The upperdir is
 * walked by path: a process left running could swap a directory for a symlink to a host directory
 * between two steps of the walk (renameat2 RENAME_EXCHANGE) and so get host files into the layer.
 * Docker pauses a container for a commit too. With `pause` false nothing is stopped: the walk is
 * then made `live` instead (see CommitContainerOptions.pause).
 */
async function freezeIfRunning(store: Store, doc: ContainerDoc, pause: boolean): Promise<Thaw> {
  const d = await refresh(store, doc);
  if (isRunning(d)) {
    if (!pause) return () => {};
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

export async function commitContainer(store: Store, doc: ContainerDoc, opts: CommitContainerOptions): Promise<Image> {
  // A `--rm` container's layer from an earlier boot (volatile, never synced) may have lost writes.
  refuseLostVolatile(doc);
  const image = await store.images.get(doc.Image);
  if (!image) throw new ContainerError(`the image of container ${doc.Name} (${doc.Image}) is no longer in the store`);
  const excluded = [...containerOnly, ...doc.Config.mounts.map((m) => m.target.replace(/^\/+/, ''))];
  // One commit of a container at a time: the first to finish thaws the container, so a second one
  // walking meanwhile would walk it running. The second waits (a dead holder's lock is broken; a
  // commit takes as long as its container is big, hence no timeout).
  const layer = await store.withLock(
    `commit-${doc.Id}`,
    () =>
      store.snapshotter.commit(
        { upperdir: doc.UpperDir },
        {
          compression: 'gzip',
          exclude: excluded,
          quiesce: () => freezeIfRunning(store, doc, opts.pause ?? true),
          live: opts.pause === false,
        },
      ),
    { timeoutMs: Infinity },
  );
  const changes = opts.changes ?? [];
  const config = opts.configure(structuredClone(image.config));
  const now = new Date().toISOString();
  config.created = now;
  if (opts.author) config.author = opts.author;
  config.rootfs = { type: 'layers', diff_ids: [...image.layers.map((l) => l.diffID), layer.diffID] };
  config.history = [
    ...(config.history ?? []),
    {
      created: now,
      created_by: `tsbuild commit ${doc.Name}${changes.length ? ` --change ${JSON.stringify(changes)}` : ''}`,
      ...(opts.message ? { comment: opts.message } : {}),
    },
  ];
  return store.images.write({ config, layers: [...image.layers, layer] });
}
