// Removing a container: the document first (so it disappears at once for every reader), then its
// directory; its anonymous volumes too when asked (`rm -v`, `run --rm`).
import { rmSync } from 'node:fs';
import { cleanupStale } from '@tsbuild/sandbox';
import type { Store } from '@tsbuild/layerstore';
import { ContainerError, alive, containerDir, containerLease, docPath, isRunning, readDoc, refresh } from './state.js';
import { removeVolume, volumesInUse } from './volumes.js';
import { stopContainer } from './signal.js';

export async function removeContainer(
  store: Store,
  id: string,
  opts: { force?: boolean; volumes?: boolean } = {},
): Promise<void> {
  let doc = await readDoc(store, id);
  if (!doc) return;
  doc = await refresh(store, doc);
  if (isRunning(doc)) {
    if (!opts.force) throw new ContainerError(`cannot remove running container ${doc.Name}: stop it first or use -f`);
    doc = await stopContainer(store, doc, 0, 'SIGKILL');
  }
  rmSync(docPath(store, id), { force: true });
  // A runner that was killed (the supervisor SIGKILLed, the foreground tsbuild OOM-killed) never reached
  // its sandbox's cleanup: the run's cgroup and state directory outlive it until some later sandbox run
  // sweeps what dead processes left. The user removing the container is not left with them: swept now.
  // A live runner's are not touched (it removes them itself before it records the exit stop waits for).
  if (doc.State.Runner !== undefined && !alive(doc.State.Runner, doc.State.RunnerStart))
    await cleanupStale().catch(() => {});
  // Its processes are gone, but it is the container's tree all the same: the snapshotter removes its
  // active snapshot (the whole directory) beneath directory fds, never following a link in it.
  store.snapshotter.remove(containerDir(store, id));
  // Expired already (its directory is gone); removed so that it does not wait for the next prune.
  await store.leases.remove(containerLease(id));
  const anonymous = doc.Config.mounts.flatMap((m) => (m.type === 'volume' && m.anonymous ? [m.name] : []));
  // volumesInUse reads every container's document: only when there is a volume to remove.
  if (opts.volumes && anonymous.length > 0) {
    const used = await volumesInUse(store);
    for (const name of anonymous) if (!used.has(name)) await removeVolume(store, name, true).catch(() => {});
  }
}
