import type { Dockerfile, Instruction } from './ast.js';
import { DockerfileError, ExpansionError } from './errors.js';
import { parseFlags } from './flags.js';
import { mountFrom } from './mounts.js';
import { parse } from './parse.js';
import { expandWord } from './shell/lexer.js';
import type { FromRef, GraphOptions, Location, Warning } from './types.js';

// The first pass over a Dockerfile, shared by baseImages() and buildGraph():
// global ARGs, stages and their FROM, the dependencies between stages, and the
// stages the target needs. No base image config is needed except for ONBUILD.

const validStageName = /^[a-z][a-z0-9-_.]*$/;
const proxyArgs = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];
export const PROXY_ARGS: ReadonlySet<string> = new Set(proxyArgs);

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
  /** Image refs named by COPY --from / --mount from= that are not stages. */
  imageRefs: string[];
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
}

function platformParts(prefix: string, platform: string): [string, string][] {
  const [os = 'linux', arch = 'amd64', variant = ''] = platform.split('/');
  return [[`${prefix}PLATFORM`, platform], [`${prefix}OS`, os], [`${prefix}ARCH`, arch], [`${prefix}VARIANT`, variant]];
}

export function builtinArgs(opts: GraphOptions): Map<string, string> {
  const build = opts.buildPlatform ?? 'linux/amd64';
  const target = opts.targetPlatform ?? build;
  return new Map([...platformParts('BUILD', build), ...platformParts('TARGET', target)]);
}

export function plan(df: Dockerfile, opts: GraphOptions, withTriggers: boolean): Plan {
  const escape = df.directives.escape;
  const buildArgs = opts.buildArgs ?? {};
  const meta = builtinArgs(opts);
  const declared = new Set<string>();
  const metaArgs: Instruction[] = [];
  const stages: PlannedStage[] = [];
  const byName = new Map<string, number>();
  const expandMeta = (word: string, at: Location): string => {
    try {
      return expandWord(word, (n) => meta.get(n), { escape });
    } catch (e) {
      if (e instanceof ExpansionError) throw new DockerfileError('expansion', e.message, at);
      throw e;
    }
  };

  for (const node of df.instructions) {
    if (node.keyword === 'FROM') {
      const flags = parseFlags(node);
      const args = node.args;
      let name: string | undefined;
      if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
        name = args[2]!.toLowerCase();
        if (!validStageName.test(name)) {
          throw new DockerfileError('bad-from', `invalid name for build stage: "${args[2]}", name can't start with a number or contain symbols`, node.location);
        }
        if (byName.has(name)) throw new DockerfileError('duplicate-stage', `duplicate stage name "${name}": each stage needs its own name`, node.location);
      } else if (args.length !== 1) {
        throw new DockerfileError('bad-from', 'FROM requires either one or three arguments (FROM image [AS name])', node.location);
      }
      const baseName = expandMeta(args[0]!, node.location);
      if (baseName === '') throw new DockerfileError('bad-from', `base name (${args[0]}) should not be blank`, node.location);
      let from: FromRef;
      const parent = byName.get(baseName.toLowerCase());
      if (parent !== undefined) from = { type: 'stage', stage: parent };
      else if (baseName === 'scratch') from = { type: 'scratch' };
      else from = { type: 'image', ref: baseName };
      const stage: PlannedStage = {
        index: stages.length, from, location: node.location, nodes: [], triggers: [],
        dependsOn: from.type === 'stage' ? [from.stage] : [], imageRefs: [],
      };
      if (name) {
        stage.name = name;
        byName.set(name, stage.index);
      }
      const platform = flags.string('platform');
      if (platform !== undefined) stage.platform = expandMeta(platform, node.location);
      stages.push(stage);
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) {
      if (node.keyword !== 'ARG') {
        throw new DockerfileError('before-from', `${node.keyword} cannot come before the first FROM (only ARG can)`, node.location);
      }
      // Global ARG: visible to FROM lines, and to stages that re-declare it.
      metaArgs.push(node);
      for (const word of node.args) {
        const eq = word.indexOf('=');
        const name = eq < 0 ? word : word.slice(0, eq);
        declared.add(name);
        if (Object.prototype.hasOwnProperty.call(buildArgs, name)) meta.set(name, buildArgs[name]!);
        else if (eq >= 0) meta.set(name, expandMeta(word.slice(eq + 1), node.location));
      }
      continue;
    }
    stage.nodes.push(node);
  }
  if (stages.length === 0) {
    const last = df.instructions[df.instructions.length - 1]!;
    throw new DockerfileError('no-stage', 'the Dockerfile has no FROM: at least one build stage is needed', last.location);
  }

  // ONBUILD triggers: a base image's (from its config) or a parent stage's own.
  if (withTriggers) {
    for (const stage of stages) {
      let triggers: string[] = [];
      if (stage.from.type === 'image') triggers = opts.baseConfig?.(stage.from.ref)?.OnBuild ?? [];
      else if (stage.from.type === 'stage') {
        triggers = stages[stage.from.stage]!.nodes.filter((n) => n.keyword === 'ONBUILD' && n.sub).map((n) => n.original.replace(/^\s*ONBUILD\s*/i, '') + n.heredocs.map((h) => '\n' + h.content + h.name).join(''));
      }
      for (const t of triggers) {
        let tdf: Dockerfile;
        try {
          tdf = parse(t, { file: df.file });
        } catch (e) {
          if (e instanceof DockerfileError) throw new DockerfileError(e.code, `ONBUILD trigger "${t}": ${e.message}`, stage.location);
          throw e;
        }
        if (tdf.instructions.length !== 1) throw new DockerfileError('onbuild', 'onbuild trigger should be a single expression', stage.location);
        const node = tdf.instructions[0]!;
        if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(node.keyword)) {
          throw new DockerfileError('onbuild', `${node.keyword} isn't allowed as an ONBUILD trigger`, stage.location);
        }
        stage.triggers.push({ ...node, location: stage.location });
      }
    }
  }

  // Dependencies named by COPY --from and RUN --mount from= (never expanded).
  const resolveName = (name: string, self: number, at: Location): number | undefined => {
    if (/^\d+$/.test(name)) {
      const i = Number(name);
      if (i >= stages.length) throw new DockerfileError('bad-from', `invalid stage index ${name}: the Dockerfile has ${stages.length} stages`, at);
      if (i === self) throw new DockerfileError('circular', `circular dependency: stage ${i} reads from itself`, at);
      return i;
    }
    const i = byName.get(name.toLowerCase());
    if (i === self) throw new DockerfileError('circular', `circular dependency: stage "${name}" reads from itself`, at);
    return i;
  };
  for (const stage of stages) {
    for (const node of [...stage.triggers, ...stage.nodes]) {
      const froms: string[] = [];
      if (node.keyword === 'COPY') {
        const f = parseFlags(node).string('from');
        if (f !== undefined) froms.push(f);
      } else if (node.keyword === 'RUN') {
        for (const m of parseFlags(node).strings('mount')) {
          const f = mountFrom(m);
          if (f !== undefined) froms.push(f);
        }
      } else {
        parseFlags(node); // unknown flags are errors in every stage, needed or not
      }
      for (const f of froms) {
        const i = resolveName(f, stage.index, node.location);
        if (i === undefined) stage.imageRefs.push(f);
        else if (!stage.dependsOn.includes(i)) stage.dependsOn.push(i);
      }
    }
  }

  let target = stages.length - 1;
  if (opts.target !== undefined) {
    const t = byName.get(opts.target.toLowerCase());
    if (t === undefined) {
      const names = [...byName.keys()];
      throw new DockerfileError('unknown-target', `target stage "${opts.target}" could not be found${names.length ? ` (stages: ${names.join(', ')})` : ''}`, stages[stages.length - 1]!.location);
    }
    target = t;
  }

  // The stages the target needs, with a cycle check (COPY --from can point forward).
  const needed = new Set<number>();
  const visiting = new Set<number>();
  const visit = (i: number): void => {
    if (needed.has(i)) return;
    if (visiting.has(i)) throw new DockerfileError('circular', `circular dependency detected on stage ${stages[i]!.name ?? i}`, stages[i]!.location);
    visiting.add(i);
    for (const d of stages[i]!.dependsOn) visit(d);
    visiting.delete(i);
    needed.add(i);
  };
  visit(target);

  return { escape, metaArgs, meta, declared, stages, target, needed };
}

/** BuildKit's warning for --build-arg values no ARG asked for. */
export function unusedArgsWarning(buildArgs: Record<string, string>, declared: Set<string>): Warning | undefined {
  const unused = Object.keys(buildArgs).filter((k) => !declared.has(k) && !PROXY_ARGS.has(k) && !/^(BUILD|TARGET)(PLATFORM|OS|ARCH|VARIANT)$/.test(k)).sort();
  if (unused.length === 0) return undefined;
  return { message: `[Warning] One or more build-args [${unused.join(' ')}] were not consumed` };
}
