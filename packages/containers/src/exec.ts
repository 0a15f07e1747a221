// `tsbuild exec`: one more process in a running container, in its namespaces and cgroup, with the
// container's environment and user unless the flags say otherwise.
import { isOpaque, type Store } from '@tsbuild/layerstore';
import {
  asContainerProcess,
  exec as sandboxExec,
  resolveUser,
  RootView,
  withHome,
  type Exit,
  type ProcessSpec,
} from '@tsbuild/sandbox';
import { applyEnv } from './env.js';
import { ContainerError, isRunning, refresh, type ContainerDoc } from './state.js';

export interface ExecOptions extends Pick<
  ProcessSpec,
  'tty' | 'stdin' | 'stdout' | 'stderr' | 'newSession' | 'onStart'
> {
  argv: string[];
  /** `-e K=V` / `-e K`, over the container's environment. */
  env?: string[];
  /** `-u USER[:GROUP]`, resolved in the container's own /etc/passwd (upperdir over its image). */
  user?: string;
  workdir?: string;
}

/** Runs a process in the running container `doc` to its end. */
export async function execInContainer(store: Store, doc: ContainerDoc, o: ExecOptions): Promise<Exit> {
  const d = await refresh(store, doc);
  if (!isRunning(d)) throw new ContainerError(`container ${d.Name} is not running`, 'conflict');
  const env = applyEnv(d.Config.env, o.env ?? []);
  let who = { uid: d.Config.uid, gid: d.Config.gid, additionalGids: d.Config.additionalGids, home: d.Config.home };
  if (o.user !== undefined) {
    // Users the container itself added count: resolve in its own view (upper dir over the image).
    const image = await store.images.get(d.Image);
    const lowers = image ? (await store.snapshotter.view(image.layers)).lowerdirs : [];
    const r = await resolveUser(new RootView([d.UpperDir, ...lowers], isOpaque), o.user).then(
      asContainerProcess,
      (e) => {
        throw new ContainerError((e as Error).message);
      },
    );
    who = { uid: r.uid, gid: r.gid, additionalGids: r.additionalGids ?? [], home: r.home };
  }
  return sandboxExec({
    pid: d.State.Pid!,
    argv: o.argv,
    env: who.home === undefined ? env : withHome(env, who.home),
    cwd: o.workdir ?? d.Config.cwd,
    uid: who.uid,
    gid: who.gid,
    additionalGids: who.additionalGids,
    keepNetRaw: d.Config.network === 'none',
    tty: o.tty,
    stdin: o.stdin,
    stdout: o.stdout,
    stderr: o.stderr,
    newSession: o.newSession,
    onStart: o.onStart,
  });
}
