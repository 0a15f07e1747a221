// Stopping and signalling a container: apart from the runner, so that removing a running
// container (remove.ts) stops it without importing what runs it.
import { killSandbox } from '@tsbuild/sandbox';
import type { Store } from '@tsbuild/layerstore';
import { ContainerError, alive, isRunning, readDoc, refresh, type ContainerDoc } from './state.js';

/**
 * Signals the container's PID 1: the application itself, which (as in docker) gets only the signals
 * it handles, or with --init the init, which forwards the signal to the application.
 */
export function signalContainer(doc: ContainerDoc, sig: NodeJS.Signals | number): void {
  if (!alive(doc.State.Pid, doc.State.PidStart)) throw new ContainerError(`container ${doc.Name} is not running`);
  process.kill(doc.State.Pid!, sig);
}

/** SIGTERM (or the image's StopSignal), then SIGKILL after `timeoutS`; waits for the recorded exit. */
export async function stopContainer(
  store: Store,
  doc: ContainerDoc,
  timeoutS: number,
  sig: NodeJS.Signals | number = 'SIGTERM',
): Promise<ContainerDoc> {
  let d = await refresh(store, doc);
  if (!isRunning(d)) return d;
  try {
    process.kill(d.State.Pid!, sig);
  } catch {
    /* gone */
  }
  const deadline = Date.now() + timeoutS * 1000;
  while (Date.now() < deadline && alive(d.State.Pid, d.State.PidStart)) await new Promise((r) => setTimeout(r, 50));
  // SIGKILL of init takes the whole pid namespace with it; killSandbox also ends a container that a
  // commit killed mid-way left frozen.
  if (alive(d.State.Pid, d.State.PidStart)) killSandbox(d.State.Pid!);
  for (let i = 0; i < 200 && alive(d.State.Pid, d.State.PidStart); i++) await new Promise((r) => setTimeout(r, 25));
  d = (await readDoc(store, d.Id)) ?? d;
  return refresh(store, d);
}

/** `kill`: the signal to a running container; SIGKILL also waits until its end is recorded. */
export async function killContainer(store: Store, doc: ContainerDoc, sig: NodeJS.Signals | number): Promise<void> {
  const r = await refresh(store, doc);
  if (!isRunning(r)) throw new ContainerError(`container ${r.Name} is not running`);
  signalContainer(r, sig);
  if (sig === 'SIGKILL' || sig === 9) await stopContainer(store, r, 5, 'SIGKILL');
}
