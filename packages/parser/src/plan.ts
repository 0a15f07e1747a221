import type { Dockerfile, Instruction } from './ast.js';
import { builtinArgs } from './build-args.js';
import { DockerfileError, ExpansionError } from './errors.js';
import type { At, Pointer } from './errors.js';
import { parseFlags } from './flags.js';
import { mountFrom } from './mounts.js';
import { normalizePlatform } from './platform.js';
import { expandWord } from './shell/lexer.js';
import { parseTriggers, stageTriggers } from './triggers.js';
import type { FromRef, GraphOptions, Location, Warning } from './types.js';

// The first pass over a Dockerfile, shared by baseImages() and buildGraph():
// global ARGs, stages and their FROM, the dependencies between stages, and the
// stages the target needs. No base image config is needed except for ONBUILD.

const validStageName = /^[a-z][a-z0-9-_.]*$/;

export interface PlannedStage {
  index: number;
  name?: string;
  from: FromRef;
  platform?: string;
  location: Location;
  nodes: Instruction[];
  /** Triggers from the base image config or the parent stage, parsed, run first. */
  triggers: Instruction[];
  dependsOn: number[];
  /** Image refs named by COPY --from / --mount from= that are not stages, with the instruction naming each. */
  imageRefs: { ref: string; location: Location }[];
}

export interface Plan {
  escape: string;
  metaArgs: Instruction[];
  /** Built-ins and global ARGs, for FROM and for `ARG NAME` inside stages. */
  meta: Map<string, string>;
  declared: Set<string>;
  stages: PlannedStage[];
  target: number;
  needed: Set<number>;
  /** What BuildKit only warns about (its linter): a stage name used twice. */
  warnings: Warning[];
}

/** True when BuildKit's lexer, with no variables set, would change the word (so it uses variables). */
function fromExpands(word: string, escape: string): boolean {
  try {
    return expandWord(word, () => undefined, { escape }) !== word;
  } catch {
    return true;
  }
}

export function plan(df: Dockerfile, opts: GraphOptions, withTriggers: boolean): Plan {
  const escape = df.directives.escape;
  const buildArgs = opts.buildArgs ?? {};
  const meta = builtinArgs(opts);
  const declared = new Set<string>();
  const metaArgs: Instruction[] = [];
  const stages: PlannedStage[] = [];
  const byName = new Map<string, number>();
  const warnings: Warning[] = [];
  const expandMeta = (word: string, at: Location, pointer?: Pointer): string => {
    try {
      return expandWord(word, (n) => meta.get(n), { escape });
    } catch (e) {
      if (e instanceof ExpansionError) throw new DockerfileError('expansion', e.message, at, pointer);
      throw e;
    }
  };

  for (const node of df.instructions) {
    const ptr = (at: At): Pointer => ({ cmd: node.cmd, at });
    if (node.keyword === 'FROM') {
      const flags = parseFlags(node);
      const args = node.args;
      const arg = (index: number) => ptr({ kind: 'arg', index, text: args[index] });
      let name: string | undefined;
      if (args.length === 3 && args[1].toLowerCase() === 'as') {
        name = args[2].toLowerCase();
        if (!validStageName.test(name)) {
          throw new DockerfileError(
            'bad-from',
            `invalid name for build stage: "${args[2]}", name can't start with a number or contain symbols`,
            node.location,
            arg(2),
          );
        }
        // BuildKit accepts a name used twice (its linter warns) and reads the later stage under it, as
        // byName.set below does: checked against dockerd 20.10's BuildKit (test/parser-goldens-buildkit).
        if (byName.has(name)) {
          warnings.push({
            message: `Duplicate stage name "${name}", stage names should be unique`,
            location: node.location,
          });
        }
      } else if (args.length !== 1) {
        throw new DockerfileError(
          'bad-from',
          'FROM requires either one or three arguments (FROM image [AS name])',
          node.location,
          args.length > 1 ? arg(1) : ptr({ kind: 'keyword' }),
        );
      }
      const baseName = expandMeta(args[0], node.location, arg(0));
      if (baseName === '')
        throw new DockerfileError('bad-from', `base name (${args[0]}) should not be blank`, node.location, arg(0));
      let from: FromRef;
      const parent = byName.get(baseName.toLowerCase());
      if (parent !== undefined) from = { type: 'stage', stage: parent };
      else if (baseName === 'scratch') from = { type: 'scratch' };
      else from = { type: 'image', ref: baseName };
      const stage: PlannedStage = {
        index: stages.length,
        from,
        location: node.location,
        nodes: [],
        triggers: [],
        dependsOn: from.type === 'stage' ? [from.stage] : [],
        imageRefs: [],
      };
      if (name) {
        stage.name = name;
        byName.set(name, stage.index);
      }
      const platform = flags.string('platform');
      if (platform !== undefined) {
        const at = ptr({ kind: 'flag', name: 'platform', nth: 0, value: true });
        stage.platform = expandMeta(platform, node.location, at);
        if (stage.platform === '')
          throw new DockerfileError(
            'bad-platform',
            `empty platform value from expression ${platform}`,
            node.location,
            at,
          );
        const normal = normalizePlatform(stage.platform, opts.buildPlatform ?? 'linux/amd64');
        if (normal === undefined) {
          throw new DockerfileError(
            'bad-platform',
            `failed to parse platform ${platform}: "${stage.platform}" is not os[/arch[/variant]]`,
            node.location,
            at,
          );
        }
        stage.platform = normal;
      }
      stages.push(stage);
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) {
      if (node.keyword !== 'ARG') {
        throw new DockerfileError(
          'before-from',
          `${node.keyword} cannot come before the first FROM (only ARG can)`,
          node.location,
          ptr({ kind: 'keyword' }),
        );
      }
      // Global ARG: visible to FROM lines, and to stages that re-declare it.
      metaArgs.push(node);
      for (const word of node.args) {
        const eq = word.indexOf('=');
        const name = eq < 0 ? word : word.slice(0, eq);
        declared.add(name);
        if (Object.prototype.hasOwnProperty.call(buildArgs, name)) meta.set(name, buildArgs[name]);
        else if (eq >= 0)
          meta.set(
            name,
            expandMeta(word.slice(eq + 1), node.location, ptr({ kind: 'text', texts: [word, word.slice(eq + 1)] })),
          );
      }
      continue;
    }
    stage.nodes.push(node);
  }
  if (stages.length === 0) {
    const last = df.instructions[df.instructions.length - 1];
    throw new DockerfileError(
      'no-stage',
      'the Dockerfile has no FROM: at least one build stage is needed',
      last.location,
    );
  }

  // ONBUILD triggers: a base image's (from its config) or a parent stage's own.
  if (withTriggers) {
    for (const stage of stages) {
      let triggers: string[] = [];
      if (stage.from.type === 'image') triggers = opts.baseConfig?.(stage.from.ref, stage.platform)?.OnBuild ?? [];
      else if (stage.from.type === 'stage') triggers = stageTriggers(stages[stage.from.stage].nodes);
      stage.triggers.push(...parseTriggers(triggers, df.file, stage.location));
    }
  }

  // Dependencies named by COPY --from and RUN --mount from= (never expanded).
  const resolveName = (name: string, self: number, at: Location, pointer: Pointer): number | undefined => {
    if (/^\d+$/.test(name)) {
      const i = Number(name);
      if (i >= stages.length)
        throw new DockerfileError(
          'bad-from',
          `invalid stage index ${name}: the Dockerfile has ${stages.length} stages`,
          at,
          pointer,
        );
      if (i === self)
        throw new DockerfileError('circular', `circular dependency: stage ${i} reads from itself`, at, pointer);
      return i;
    }
    const i = byName.get(name.toLowerCase());
    if (i === self)
      throw new DockerfileError('circular', `circular dependency: stage "${name}" reads from itself`, at, pointer);
    return i;
  };
  for (const stage of stages) {
    for (const node of [...stage.triggers, ...stage.nodes]) {
      const froms: [string, Pointer][] = [];
      if (node.keyword === 'COPY') {
        const f = parseFlags(node).string('from');
        if (f !== undefined) {
          const at: Pointer = { cmd: node.cmd, at: { kind: 'flag', name: 'from', nth: 0, value: true } };
          // BuildKit: "--from" is never expanded, and a value that would expand is an error.
          if (fromExpands(f, escape)) {
            throw new DockerfileError(
              'bad-from',
              'variable expansion is not supported for --from, define a new stage with FROM using ARG from global ' +
                'scope as a workaround',
              node.location,
              at,
            );
          }
          froms.push([f, at]);
        }
      } else if (node.keyword === 'RUN') {
        parseFlags(node)
          .strings('mount')
          .forEach((m, nth) => {
            const f = mountFrom(m);
            if (f !== undefined)
              froms.push([f, { cmd: node.cmd, at: { kind: 'flag', name: 'mount', nth, value: true, option: 'from' } }]);
          });
      } else {
        parseFlags(node); // unknown flags are errors in every stage, needed or not
      }
      for (const [f, at] of froms) {
        const i = resolveName(f, stage.index, node.location, at);
        if (i === undefined) stage.imageRefs.push({ ref: f, location: node.location });
        else if (!stage.dependsOn.includes(i)) stage.dependsOn.push(i);
      }
    }
  }

  let target = stages.length - 1;
  if (opts.target !== undefined) {
    const t = byName.get(opts.target.toLowerCase());
    if (t === undefined) {
      const names = [...byName.keys()];
      throw new DockerfileError(
        'unknown-target',
        `target stage "${opts.target}" could not be found${names.length ? ` (stages: ${names.join(', ')})` : ''}`,
        stages[stages.length - 1].location,
      );
    }
    target = t;
  }

  // The stages the target needs, with a cycle check (COPY --from can point forward).
  const needed = new Set<number>();
  const visiting = new Set<number>();
  const visit = (i: number): void => {
    if (needed.has(i)) return;
    if (visiting.has(i))
      throw new DockerfileError(
        'circular',
        `circular dependency detected on stage ${stages[i].name ?? i}`,
        stages[i].location,
      );
    visiting.add(i);
    for (const d of stages[i].dependsOn) visit(d);
    visiting.delete(i);
    needed.add(i);
  };
  visit(target);

  return { escape, metaArgs, meta, declared, stages, target, needed, warnings };
}
