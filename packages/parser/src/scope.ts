// What a stage knows while its steps are walked: the variables used for
// expansion (ENV and ARG together, the last one set wins, as in BuildKit where
// both land in the state's environment), the image environment (ENV only), the
// build args in scope, WORKDIR and SHELL.
export class Scope {
  vars = new Map<string, string>();
  env: [string, string][] = [];
  args = new Map<string, string>();
  workdir = '/';
  /**
   * False while the working directory depends on a base image's config that was not given (`tsbuild parse`
   * plans without pulling): a mount target resolved against it cannot be judged yet.
   */
  workdirKnown = true;
  shell: string[] = ['/bin/sh', '-c'];
  /** This stage's own ONBUILD triggers, inherited by stages built FROM it. */
  onbuild: string[] = [];
  /** The ARGs this stage declared, with a value or '' (RunStep.historyArgs); a child stage lists only its own. */
  stageArgs = new Map<string, string>();

  clone(): Scope {
    const s = new Scope();
    s.vars = new Map(this.vars);
    s.env = this.env.map(([k, v]) => [k, v]);
    s.args = new Map(this.args);
    s.workdir = this.workdir;
    s.workdirKnown = this.workdirKnown;
    s.shell = [...this.shell];
    return s;
  }

  setEnv(key: string, value: string): void {
    const i = this.env.findIndex(([k]) => k === key);
    if (i >= 0) this.env[i] = [key, value];
    else this.env.push([key, value]);
    this.vars.set(key, value);
  }

  lookup = (name: string): string | undefined => this.vars.get(name);

  envList(): string[] {
    return this.env.map(([k, v]) => `${k}=${v}`);
  }
}

/** Splits a `K=V` image env entry. */
export function splitEnv(entry: string): [string, string] {
  const eq = entry.indexOf('=');
  return eq < 0 ? [entry, ''] : [entry.slice(0, eq), entry.slice(eq + 1)];
}
