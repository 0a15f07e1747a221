// Rules of an image config's process environment that both a build (RUN) and a container apply:
// the PATH a process gets when its image sets none, and how one Env entry is set.

/** BuildKit's and docker's default PATH (system.DefaultPathEnv for Linux). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Sets KEY=value in an Env list: an existing key keeps its position, as Docker does. */
export function setEnv(env: string[] | undefined, key: string, value: string): string[] {
  const list = [...(env ?? [])];
  const idx = list.findIndex((e) => e.split('=', 1)[0] === key);
  if (idx >= 0) list[idx] = `${key}=${value}`;
  else list.push(`${key}=${value}`);
  return list;
}
