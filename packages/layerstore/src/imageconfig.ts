// Rules of an image config's process environment that both a build (RUN) and a container apply:
// the PATH a process gets when its image sets none, and how one Env entry is set.

/** The runtime's default PATH, as runc and moby define it (@tsbuild/sys). */
export { DEFAULT_PATH } from '@tsbuild/sys';

/** Sets KEY=value in an Env list: an existing key keeps its position, as Docker does. */
export function setEnv(env: string[] | undefined, key: string, value: string): string[] {
  const list = [...(env ?? [])];
  const idx = list.findIndex((e) => e.split('=', 1)[0] === key);
  if (idx >= 0) list[idx] = `${key}=${value}`;
  else list.push(`${key}=${value}`);
  return list;
}
