// The environment flags of run and exec: "K=V" sets, "K" takes K from this process's environment
// (skipped if unset), as docker does.
import { setEnv } from '@tsbuild/layerstore';

export function applyEnv(env: string[], items: string[]): string[] {
  let out = env;
  for (const e of items) {
    const eq = e.indexOf('=');
    if (eq < 0) {
      if (process.env[e] !== undefined) out = setEnv(out, e, process.env[e]);
    } else out = setEnv(out, e.slice(0, eq), e.slice(eq + 1));
  }
  return out;
}
