// The instruction graph: what the builder walks. Everything here is plain data
// (JSON-serialisable) so that `tsbuild parse --format json` can print it as is.

/**
 * 1-based line and column. For an instruction, endLine is its last physical line.
 * Errors that point inside an instruction (a flag, a word, a `--mount` field) give
 * that span: line/column at its first character, endLine/endColumn just after its
 * last one (endColumn is exclusive, as in LSP ranges; absent for whole instructions).
 */
export interface Location {
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn?: number;
}

export interface Warning {
  message: string;
  location?: Location;
}

/** The subset of an OCI image config the graph needs from a base image. */
export interface BaseConfig {
  Env?: string[];
  OnBuild?: string[] | null;
  Shell?: string[];
  WorkingDir?: string;
}

export type FromRef = { type: 'scratch' } | { type: 'stage'; stage: number } | { type: 'image'; ref: string };

export interface Stage {
  index: number;
  name?: string;
  from: FromRef;
  /** `--platform` as expanded, if given. */
  platform?: string;
  location: Location;
  steps: Step[];
  /** Indexes of the stages this stage reads (FROM stage, COPY --from, RUN --mount from=). */
  dependsOn: number[];
}

export interface Graph {
  /** Only the stages the target needs, in file order; `index` keeps the original position. */
  stages: Stage[];
  /** Index of the target stage (the last one unless `--target`). */
  target: number;
  directives: { syntax?: string; escape: string; check?: string };
  /** Build args given with --build-arg that no ARG consumed, ... */
  warnings: Warning[];
}

interface StepBase {
  /** The instruction as written (one logical line, continuations joined), for history and errors. */
  source: string;
  location: Location;
  /** The image environment before this step (base image Env, then ENV steps), as K=V. */
  env: string[];
  /** Build args in scope with a value at this step (ARG, --build-arg, built-ins), as K=V; never image config. */
  args: string[];
  /** True for steps that came from a base image's ONBUILD trigger. */
  onbuild?: boolean;
}

export type RunMount =
  | { type: 'bind'; target: string; source: string; from?: FromSource; readwrite: boolean }
  | {
      type: 'cache';
      target: string;
      id: string;
      sharing: 'shared' | 'private' | 'locked';
      from?: FromSource;
      source: string;
      readonly: boolean;
      mode: number;
      uid: number;
      gid: number;
    }
  | { type: 'tmpfs'; target: string; size?: number }
  | {
      type: 'secret';
      target: string;
      id: string;
      required: boolean;
      mode: number;
      uid: number;
      gid: number;
      env?: string;
    }
  | { type: 'ssh'; target: string; id: string; required: boolean; mode: number; uid: number; gid: number };

/** Where `--from` points: an earlier stage, or an image reference. */
export type FromSource = { type: 'stage'; stage: number } | { type: 'image'; ref: string };

export interface RunStep extends StepBase {
  kind: 'run';
  /** The argv to execute: exec form as given, shell form as SHELL + [script] (heredocs inlined as shell heredocs). */
  argv: string[];
  shellForm: boolean;
  /** Files the builder must provide before running (a heredoc with a shebang is run as a file). */
  files: { path: string; content: string; mode: number }[];
  mounts: RunMount[];
  /** The proxy build args' environment (build-args.ts proxyEnv): set over env and args, not in the cache key. */
  proxy?: string[];
  network?: 'default' | 'none' | 'host';
  security?: 'sandbox' | 'insecure';
  /**
   * The ARGs this stage declared so far, as BuildKit's history entry lists them before the command (`RUN |2 A=1
   * B= ...`): K=V, V empty for an ARG with no value, an ENV of the same name winning. Absent when there are none.
   */
  historyArgs?: string[];
}

export interface CopyStep extends StepBase {
  kind: 'copy' | 'add';
  /** Source paths or URLs, expanded (ADD/COPY expand ENV/ARG in sources and dest). */
  sources: string[];
  /** Inline sources from heredocs (`COPY <<EOF /dest`), in order. */
  inline: { name: string; content: string }[];
  /** Destination, expanded and made absolute against WORKDIR; a trailing '/' is kept. */
  dest: string;
  /** The destination expanded but as written (relative stays relative): what BuildKit's history entry shows. */
  destWritten: string;
  from?: FromSource;
  chown?: string;
  chmod?: string;
  link: boolean;
  exclude: string[];
  parents: boolean;
  checksum?: string;
  keepGitDir: boolean;
  unpack?: boolean;
}

export interface EnvStep extends StepBase {
  kind: 'env';
  pairs: [string, string][];
}
export interface ArgStep extends StepBase {
  kind: 'arg';
  declared: { name: string; value?: string }[];
}
export interface LabelStep extends StepBase {
  kind: 'label';
  pairs: [string, string][];
}
export interface ExposeStep extends StepBase {
  kind: 'expose';
  ports: string[];
}
export interface VolumeStep extends StepBase {
  kind: 'volume';
  paths: string[];
}
export interface UserStep extends StepBase {
  kind: 'user';
  user: string;
}
/** `path` is absolute: relative WORKDIRs are resolved against the previous one. */
export interface WorkdirStep extends StepBase {
  kind: 'workdir';
  path: string;
}
/** argv is final: shell form already wrapped in the stage's SHELL. */
export interface EntrypointStep extends StepBase {
  kind: 'entrypoint';
  argv: string[];
  shellForm: boolean;
}
export interface CmdStep extends StepBase {
  kind: 'cmd';
  argv: string[];
  shellForm: boolean;
}
export interface ShellStep extends StepBase {
  kind: 'shell';
  argv: string[];
}
export interface HealthcheckStep extends StepBase {
  kind: 'healthcheck';
  /** ["NONE"], ["CMD", ...argv] or ["CMD-SHELL", script], as Docker stores it. */
  test: string[];
  /** Durations in nanoseconds, as in the image config; absent when not given. */
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}
export interface StopsignalStep extends StepBase {
  kind: 'stopsignal';
  signal: string;
}
/** `trigger` is the nested instruction as written, as stored in the config's OnBuild. */
export interface OnbuildStep extends StepBase {
  kind: 'onbuild';
  trigger: string;
}
export interface MaintainerStep extends StepBase {
  kind: 'maintainer';
  name: string;
}

export type Step =
  | RunStep
  | CopyStep
  | EnvStep
  | ArgStep
  | LabelStep
  | ExposeStep
  | VolumeStep
  | UserStep
  | WorkdirStep
  | EntrypointStep
  | CmdStep
  | ShellStep
  | HealthcheckStep
  | StopsignalStep
  | OnbuildStep
  | MaintainerStep;

export interface GraphOptions {
  file?: string;
  /**
   * --build-arg values; a value of undefined means "take it from the environment" was already resolved by the caller.
   */
  buildArgs?: Record<string, string>;
  target?: string;
  /** Platform of the build and of the target, e.g. linux/amd64. */
  buildPlatform?: string;
  targetPlatform?: string;
  /**
   * Config of each base image, by the expanded FROM reference and the FROM's own `--platform` (undefined:
   * the target platform), as `baseImageUses` lists them.
   */
  baseConfig?: (ref: string, platform?: string) => BaseConfig | undefined;
}
