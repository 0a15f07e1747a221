import { DEFAULT_PATH } from '@tsbuild/sys';
import type { Dockerfile } from './ast.js';
import { DockerfileError } from './errors.js';
import type { Pointer } from './errors.js';
import { parseFlags } from './flags.js';
import { located } from './locate.js';
import { MountError, parseMount } from './mounts.js';
import { unusedArgsWarning } from './build-args.js';
import { plan } from './plan.js';
import { Scope, splitEnv } from './scope.js';
import { convertStep } from './steps.js';
import type { StepContext } from './steps.js';
import type { FromSource, Graph, GraphOptions, Location, Stage, Step } from './types.js';

/** The runtime's default PATH (@tsbuild/sys), added to a stage's env when its base has none. */
export { DEFAULT_PATH };

/**
 * The instruction graph the builder walks: the stages the target needs, each
 * with its steps fully expanded under BuildKit's ARG/ENV scoping.
 */
export function buildGraph(df: Dockerfile, opts: GraphOptions = {}): Graph {
  try {
    return graph(df, opts);
  } catch (e) {
    throw located(e, df);
  }
}

function graph(df: Dockerfile, opts: GraphOptions): Graph {
  const p = plan(df, opts, true);
  const buildArgs = opts.buildArgs ?? {};
  const declared = new Set(p.declared);
  const finals = new Map<number, Scope>();
  const stages: Stage[] = [];
  const byName = new Map(p.stages.filter((s) => s.name).map((s) => [s.name!, s.index]));

  const resolveFrom = (name: string, location: Location, pointer: Pointer | undefined): FromSource => {
    if (/^\d+$/.test(name)) return { type: 'stage', stage: Number(name) };
    const i = byName.get(name.toLowerCase());
    if (i !== undefined) return { type: 'stage', stage: i };
    if (name === '')
      throw new DockerfileError('bad-from', '--from needs a stage name, index or image', location, pointer);
    return { type: 'image', ref: name };
  };

  for (const ps of p.stages) {
    if (!p.needed.has(ps.index)) {
      checkUnneeded(ps.nodes, { escape: p.escape, meta: p.meta, buildArgs, resolveFrom });
      continue;
    }
    let scope: Scope;
    if (ps.from.type === 'stage') {
      // A child stage starts where its parent ended (env, args, workdir, shell).
      scope = finals.get(ps.from.stage)!.clone();
    } else {
      scope = new Scope();
      const config = ps.from.type === 'image' ? opts.baseConfig?.(ps.from.ref, ps.platform) : undefined;
      for (const e of config?.Env ?? []) scope.setEnv(...splitEnv(e));
      if (config?.WorkingDir) scope.workdir = config.WorkingDir;
      if (ps.from.type === 'image' && !opts.baseConfig) scope.workdirKnown = false;
      if (config?.Shell && config.Shell.length > 0) scope.shell = [...config.Shell];
      // BuildKit makes sure PATH is always set (except on Windows), so `$PATH` expands.
      const os = (ps.platform ?? opts.targetPlatform ?? opts.buildPlatform ?? 'linux').split('/')[0];
      if (os !== 'windows' && !scope.env.some(([k]) => k === 'PATH')) scope.setEnv('PATH', DEFAULT_PATH);
    }
    const steps: Step[] = [];
    const walk = (nodes: typeof ps.nodes, onbuild: boolean) => {
      for (const node of nodes) {
        if (node.keyword === 'ARG') {
          for (const w of node.args) declared.add(w.split('=')[0]);
        }
        steps.push(
          convertStep(node, scope, {
            escape: p.escape,
            meta: p.meta,
            buildArgs,
            resolveFrom,
            onbuild,
            location: node.location,
          }),
        );
      }
    };
    walk(ps.triggers, true);
    scope.onbuild = [];
    walk(ps.nodes, false);
    finals.set(ps.index, scope);

    const stage: Stage = {
      index: ps.index,
      from: ps.from,
      location: ps.location,
      steps,
      dependsOn: [...ps.dependsOn].sort((a, b) => a - b),
    };
    if (ps.name) stage.name = ps.name;
    if (ps.platform !== undefined) stage.platform = ps.platform;
    stages.push(stage);
  }

  const warnings = [...df.warnings, ...p.warnings];
  const unused = unusedArgsWarning(buildArgs, declared);
  if (unused) warnings.push(unused);
  return { stages, target: p.target, directives: { ...df.directives }, warnings };
}

/**
 * The errors of BuildKit's parse, which reads every instruction of every stage before it builds one, in a
 * stage the target does not need: argument counts, ONBUILD triggers, SHELL's JSON form, HEALTHCHECK's
 * flags. What BuildKit finds only while building a stage (expansion, ports, names) is left alone: each
 * instruction is converted in a scope of its own, where every variable is set and not empty (so that no
 * expansion fails or empties a word), and only those errors are kept.
 */
function checkUnneeded(nodes: Dockerfile['instructions'], ctx: Omit<StepContext, 'onbuild' | 'location'>): void {
  for (const node of nodes) {
    if (node.keyword === 'RUN') checkUnneededMounts(node);
    const scope = new Scope();
    scope.lookup = () => 'x';
    try {
      convertStep(node, scope, { ...ctx, onbuild: false, location: node.location });
    } catch (e) {
      const parseLevel = (c: string) => parseErrors.has(c) || (c === 'bad-flag' && node.keyword === 'HEALTHCHECK');
      if (e instanceof DockerfileError && parseLevel(e.code)) throw e;
    }
  }
}
// Not 'blank' (a name or VOLUME path empty once expanded): BuildKit's parse reads the word as written.
const parseErrors = new Set(['arguments', 'onbuild', 'shell-not-json']);

/**
 * RUN --mount values in a stage the target does not need: BuildKit's parse (dockerd 20.10) reads each value
 * as written and refuses an unknown type or key, a bad number, mode, flag or sharing, a secret's conflicting
 * fields (not a target of "/" or an ssh mount's from=, found only when the stage is built). A value with a
 * variable in it is judged when its stage is built, as tsbuild expands it there: `uid=$UID` must not fail the
 * build of a target that does not need the stage when it builds the target that does. (Later BuildKit defers
 * every --mount field but a from= with a variable to the stage's build, and so accepts these.)
 */
function checkUnneededMounts(node: Dockerfile['instructions'][number]): void {
  let values: string[];
  try {
    values = parseFlags(node).strings('mount');
  } catch {
    return; // a bad flag: convertStep says so
  }
  values.forEach((value, nth) => {
    if (value.includes('$')) return;
    try {
      parseMount(value, (w) => w, '/', 0, false);
    } catch (e) {
      if (!(e instanceof MountError) || e.stageLevel) return;
      throw new DockerfileError('bad-mount', `--mount=${value}: ${e.message}`, node.location, {
        cmd: node.cmd,
        at: { kind: 'flag', name: 'mount', nth, value: true, ...(e.key ? { option: e.key } : {}) },
      });
    }
  });
}

/**
 * The image references the target needs, expanded: FROM images (not scratch or
 * stages) and images named by COPY --from / --mount from=. Resolve these, then
 * pass their configs to buildGraph (ONBUILD triggers can add more: call again).
 */
export function baseImages(df: Dockerfile, opts: GraphOptions = {}): string[] {
  return [...new Set(baseImageUses(df, opts).map((u) => u.ref))];
}

/** One image a build needs, as baseImageUses lists it. */
export interface BaseImageUse {
  ref: string;
  platform?: string;
  /** The first instruction naming it (FROM, COPY --from, RUN --mount from=): where a failure to resolve it is said. */
  location: Location;
}

/**
 * The image references the target needs, each with the platform it is wanted for: a FROM's own
 * `--platform` (expanded and normalized), or none for the build's target platform (a FROM without
 * the flag, COPY --from and --mount from= images, as BuildKit resolves them). A ref used for two
 * platforms is listed twice; pass each one's config to buildGraph by (ref, platform).
 */
export function baseImageUses(df: Dockerfile, opts: GraphOptions = {}): BaseImageUse[] {
  let p: ReturnType<typeof plan>;
  try {
    p = plan(df, opts, opts.baseConfig !== undefined);
  } catch (e) {
    throw located(e, df);
  }
  const out: BaseImageUse[] = [];
  const add = (ref: string, platform: string | undefined, location: Location) => {
    if (!out.some((u) => u.ref === ref && u.platform === platform))
      out.push(platform === undefined ? { ref, location } : { ref, platform, location });
  };
  for (const s of p.stages) {
    if (!p.needed.has(s.index)) continue;
    if (s.from.type === 'image') add(s.from.ref, s.platform, s.location);
    for (const r of s.imageRefs) add(r.ref, undefined, r.location);
  }
  return out;
}
