// Build checks: BuildKit's Dockerfile linter rules (same names, messages and documentation links), run
// on the syntax tree without building. Pure: what a base image contributes (its Env) is passed in.
//
// Rules: FromAsCasing, StageNameCasing, DuplicateStageName, UndefinedVar, UndefinedArgInFrom,
// JSONArgsRecommended, MaintainerDeprecated, WorkdirRelativePath, ConsistentInstructionCasing,
// SecretsUsedInArgOrEnv, InvalidDefaultArgInFrom, MultipleInstructionsDisallowed, LegacyKeyValueFormat.
// The `# check=skip=A,B;error=true` directive (or BUILDKIT_DOCKERFILE_CHECK) says which to skip and
// whether a warning fails the build.
import type { Dockerfile, Instruction } from './ast.js';
import { DockerfileError } from './errors.js';
import { lex } from './shell/lexer.js';
import type { Location } from './types.js';

export interface LintWarning {
  /** BuildKit's rule name, e.g. `FromAsCasing`. */
  rule: string;
  /** The finding, worded as BuildKit's. */
  message: string;
  /** What the rule is about (BuildKit's description). */
  description: string;
  /** BuildKit's documentation page for the rule. */
  url: string;
  location: Location;
}

export interface LintConfig {
  skip: Set<string>;
  skipAll: boolean;
  /** `error=true`: a build with warnings fails. */
  error: boolean;
}

export interface LintOptions {
  /**
   * The Env of a base image by its FROM reference as written (after ARG expansion); undefined when it is
   * not known, and then UndefinedVar says nothing in that stage (the base may define any name).
   */
  baseEnv?: (ref: string) => string[] | undefined;
  /** Overrides the `# check=` directive (BuildKit's BUILDKIT_DOCKERFILE_CHECK build arg). */
  check?: string;
  /** --build-arg values: a FROM's reference is expanded with them to find its base's Env. */
  buildArgs?: Record<string, string>;
}

const rules = {
  StageNameCasing: 'Stage names should be lowercase',
  FromAsCasing: "The 'as' keyword should match the case of the 'from' keyword",
  ConsistentInstructionCasing: 'All commands within the Dockerfile should use the same casing (either upper or lower)',
  DuplicateStageName: 'Stage names should be unique',
  JSONArgsRecommended:
    'JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals',
  MaintainerDeprecated: 'The MAINTAINER instruction is deprecated, use a label instead to define an image author',
  UndefinedArgInFrom: 'FROM command must use declared ARGs',
  WorkdirRelativePath:
    'Relative workdir without an absolute workdir declared within the build can have unexpected results if the ' +
    'base image changes',
  UndefinedVar: 'Variables should be defined before their use',
  MultipleInstructionsDisallowed: 'Multiple instructions of the same type should not be used in the same stage',
  LegacyKeyValueFormat: 'Legacy key/value format with whitespace separator should not be used',
  SecretsUsedInArgOrEnv: 'Sensitive data should not be used in the ARG or ENV commands',
  InvalidDefaultArgInFrom: 'Default value for global ARG results in an empty or invalid base image name',
} as const;
export type RuleName = keyof typeof rules;
export const RULES: readonly RuleName[] = Object.keys(rules) as RuleName[];

const kebab = (name: string) =>
  name
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2')
    .replace(/([a-z])([A-Z])/g, '$1-$2')
    .toLowerCase();
export const ruleUrl = (name: RuleName): string => `https://docs.docker.com/go/dockerfile/rule/${kebab(name)}/`;

/** `skip=A,B;error=true`, as BuildKit reads the `# check=` directive; throws a message for a bad one. */
export function parseCheckOption(text: string): LintConfig {
  const config: LintConfig = { skip: new Set(), skipAll: false, error: false };
  const value = text.trim();
  if (value === '') return config;
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new Error(`invalid check option "${part}"`);
    const key = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (key === 'skip') {
      if (v === 'all') config.skipAll = true;
      else for (const r of v.split(',')) if (r.trim()) config.skip.add(r.trim());
    } else if (key === 'error') {
      const b = { true: true, '1': true, t: true, TRUE: true, false: false, '0': false, f: false, FALSE: false }[v];
      if (b === undefined) throw new Error(`failed to parse check option "${part}": "${v}" is not true or false`);
      config.error = b;
    } else if (key === 'experimental') {
      // BuildKit's experimental rules: none of them is implemented here, so there is nothing to enable.
    } else throw new Error(`invalid check option "${key}"`);
  }
  return config;
}

// Build args every FROM may use without declaring them (BuildKit's predefined platform args).
const PLATFORM_ARGS = ['BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT'].flatMap((n) => [
  n,
  n.replace('BUILD', 'TARGET'),
]);

// BuildKit's: a name whose first or last `_` word is one of these (case-insensitive), unless it says public.
const secretName = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const publicName = /public/i;

// A docker image reference (distribution's grammar), to tell whether a FROM's default expands to one.
const component = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const domain = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*';
const reference = new RegExp(
  `^(?:${domain}(?::[0-9]+)?/)?${component}(?:/${component})*(?::[\\w][\\w.-]{0,127})?` +
    '(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$',
);

/** Levenshtein distance, for BuildKit's "did you mean" (a suggestion is closer than 3 edits). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
function suggest(name: string, options: Iterable<string>): string | undefined {
  let best: string | undefined;
  let min = 3;
  for (const o of options) {
    if (o === name) return undefined;
    const d = distance(name, o);
    if (d < min) {
      min = d;
      best = o;
    }
  }
  return best;
}

/** Variables a word reads with a default or alternative (`${X:-d}`, `${X-d}`, `${X:+a}`, ...): not undefined. */
function defaultedRefs(word: string): Set<string> {
  const withDefault = new Set<string>();
  for (const m of word.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-+?=])/g)) withDefault.add(m[1]);
  return withDefault;
}

interface StageInfo {
  name?: string;
  /** Names an instruction may read: ENV (the base image's too) and ARG. */
  env: Set<string>;
  /** False when the base image's Env is not known. */
  envKnown: boolean;
  shell: boolean;
  absWorkdir: boolean;
  /** CMD / ENTRYPOINT / HEALTHCHECK instructions, for MultipleInstructionsDisallowed. */
  singles: Map<string, Instruction[]>;
}

/** Runs the checks on a parsed Dockerfile; `config` is what the directive (or options.check) asked for. */
export function lint(df: Dockerfile, opts: LintOptions = {}): { warnings: LintWarning[]; config: LintConfig } {
  const checkText = opts.check ?? df.directives.check ?? '';
  let config: LintConfig;
  try {
    config = parseCheckOption(checkText);
  } catch (e) {
    const line = df.directives.checkLine ?? 1;
    throw new DockerfileError('invalid-directive', (e as Error).message, {
      file: df.file,
      line,
      column: 1,
      endLine: line,
    });
  }
  const warnings: LintWarning[] = [];
  const warn = (rule: RuleName, message: string, at: Instruction) => {
    if (config.skipAll || config.skip.has(rule)) return;
    warnings.push({ rule, message, description: rules[rule], url: ruleUrl(rule), location: at.location });
  };
  const escape = df.directives.escape;
  const refsOf = (word: string, known: (n: string) => boolean): string[] => {
    let unmatched: Set<string>;
    try {
      unmatched = lex(word, (n) => (known(n) ? '' : undefined), { escape }).unmatched;
    } catch {
      return []; // a malformed expansion is the build's error to report, not a lint finding
    }
    const defaulted = defaultedRefs(word);
    return [...unmatched].filter((n) => !defaulted.has(n));
  };
  const expand = (word: string, env: Map<string, string>): string | undefined => {
    try {
      return lex(word, (n) => env.get(n), { escape }).word;
    } catch {
      return undefined;
    }
  };

  consistentCasing(df.instructions, warn);

  const globals = new Map<string, string | undefined>(); // declared global ARGs and their defaults
  const stages: StageInfo[] = [];
  const names = new Set<string>();
  let stage: StageInfo | undefined;
  const endStage = () => {
    for (const [kw, list] of stage?.singles ?? []) {
      for (const i of list.slice(0, -1))
        warn(
          'MultipleInstructionsDisallowed',
          `Multiple ${kw} instructions should not be used in the same stage because only the last one will be used`,
          i,
        );
    }
  };
  for (const ins of df.instructions) {
    const kw = ins.keyword;
    if (kw === 'FROM') {
      endStage();
      stage = fromStage(ins);
      stages.push(stage);
      continue;
    }
    if (!stage) {
      if (kw === 'ARG') {
        for (const word of ins.args) {
          const eq = word.indexOf('=');
          const name = eq < 0 ? word : word.slice(0, eq);
          secrets('ARG', name, ins);
          globals.set(name, eq < 0 ? undefined : (expand(word.slice(eq + 1), defaults()) ?? ''));
        }
      }
      continue;
    }
    const s = stage;
    const undefinedVars = (words: string[]) => {
      if (!s.envKnown) return;
      const seen = new Set<string>();
      for (const w of words)
        for (const n of refsOf(w, (x) => s.env.has(x))) {
          if (seen.has(n)) continue;
          seen.add(n);
          const near = suggest(n, s.env);
          warn('UndefinedVar', `Usage of undefined variable '$${n}'${near ? ` (did you mean $${near}?)` : ''}`, ins);
        }
    };
    switch (kw) {
      case 'ARG':
        for (const word of ins.args) {
          const eq = word.indexOf('=');
          const name = eq < 0 ? word : word.slice(0, eq);
          secrets('ARG', name, ins);
          if (eq >= 0) undefinedVars([word.slice(eq + 1)]);
          s.env.add(name);
        }
        break;
      case 'ENV':
      case 'LABEL': {
        if (ins.args[2] === '')
          warn(
            'LegacyKeyValueFormat',
            `"${kw} key=value" should be used instead of legacy "${kw} key value" format`,
            ins,
          );
        const words: string[] = [];
        for (let i = 0; i + 1 < ins.args.length; i += 3) {
          if (kw === 'LABEL') words.push(ins.args[i]);
          words.push(ins.args[i + 1]);
        }
        undefinedVars(words);
        if (kw === 'ENV')
          for (let i = 0; i < ins.args.length; i += 3) {
            secrets('ENV', ins.args[i], ins);
            s.env.add(ins.args[i]);
          }
        break;
      }
      case 'COPY':
      case 'ADD':
      case 'EXPOSE':
      case 'USER':
      case 'VOLUME':
      case 'STOPSIGNAL':
        undefinedVars(ins.args);
        break;
      case 'WORKDIR': {
        undefinedVars(ins.args);
        const dir = ins.args[0] ?? '';
        if (dir.startsWith('/') || dir.startsWith('$')) s.absWorkdir ||= dir.startsWith('/');
        else if (!s.absWorkdir)
          warn(
            'WorkdirRelativePath',
            `Relative workdir ${JSON.stringify(dir)} can have unexpected results if the base image changes`,
            ins,
          );
        break;
      }
      case 'SHELL':
        s.shell = true;
        break;
      case 'CMD':
      case 'ENTRYPOINT':
      case 'HEALTHCHECK':
        if (kw !== 'HEALTHCHECK' && !ins.json && !s.shell && ins.args.length)
          warn(
            'JSONArgsRecommended',
            `JSON arguments recommended for ${kw} to prevent unintended behavior related to OS signals`,
            ins,
          );
        s.singles.set(kw, [...(s.singles.get(kw) ?? []), ins]);
        break;
      case 'MAINTAINER':
        warn('MaintainerDeprecated', 'Maintainer instruction is deprecated in favor of using label', ins);
        break;
    }
  }
  endStage();
  return { warnings, config };

  function defaults(): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, v] of globals) if (v !== undefined) m.set(k, v);
    return m;
  }

  function secrets(kw: 'ARG' | 'ENV', name: string, ins: Instruction) {
    if (secretName.test(name) && !publicName.test(name))
      warn(
        'SecretsUsedInArgOrEnv',
        `Do not use ARG or ENV instructions for sensitive data (${kw} ${JSON.stringify(name)})`,
        ins,
      );
  }

  function fromStage(ins: Instruction): StageInfo {
    const [image = '', as, name] = ins.args;
    if (as !== undefined && name !== undefined) {
      const from = ins.cmd;
      const lower = from === from.toLowerCase();
      const upper = from === from.toUpperCase();
      // A FROM of mixed case is ConsistentInstructionCasing's finding; the 'as' is not judged against it.
      if ((lower && as !== as.toLowerCase()) || (upper && !lower && as !== as.toUpperCase()))
        warn('FromAsCasing', `'${as}' and '${from}' keywords' casing do not match`, ins);
      if (name !== name.toLowerCase()) warn('StageNameCasing', `Stage name '${name}' should be lowercase`, ins);
      if (names.has(name.toLowerCase()))
        warn(
          'DuplicateStageName',
          `Duplicate stage name ${JSON.stringify(name.toLowerCase())}, stage names should be unique`,
          ins,
        );
    }
    // FROM may read global ARGs and the platform args only.
    const declared = new Set([...globals.keys(), ...PLATFORM_ARGS]);
    const platform = ins.flags.find((f) => f.startsWith('--platform='))?.slice('--platform='.length);
    const fromWords = platform === undefined ? [image] : [platform, image];
    const seen = new Set<string>();
    for (const w of fromWords)
      for (const n of refsOf(w, (x) => declared.has(x))) {
        if (seen.has(n)) continue;
        seen.add(n);
        const near = suggest(n, declared);
        warn(
          'UndefinedArgInFrom',
          `FROM argument '${n}' is not declared${near ? ` (did you mean ${near}?)` : ''}`,
          ins,
        );
      }
    // The base name with the global ARGs' defaults (as a build without --build-arg would see it).
    if (image.includes('$')) {
      const platformDefaults = new Map(PLATFORM_ARGS.map((n) => [n, 'x']));
      const expanded = expand(image, new Map([...platformDefaults, ...defaults()]));
      if (expanded !== undefined && (expanded === '' || !reference.test(expanded)))
        warn(
          'InvalidDefaultArgInFrom',
          `Default value for ARG ${image} results in empty or invalid base image name`,
          ins,
        );
    }
    const base = stages.find((s) => s.name !== undefined && s.name === image.toLowerCase());
    const info: StageInfo = {
      name: name?.toLowerCase(),
      env: new Set(base?.env ?? []),
      envKnown: base ? base.envKnown : false,
      shell: base?.shell ?? false,
      absWorkdir: base?.absWorkdir ?? false,
      singles: new Map(),
    };
    if (!base) {
      const given = Object.entries(opts.buildArgs ?? {}).filter(([k]) => globals.has(k));
      const ref = expand(image, new Map([...defaults(), ...given])) ?? image;
      const env = ref.toLowerCase() === 'scratch' ? [] : opts.baseEnv?.(ref);
      if (env) {
        info.envKnown = true;
        // A base without PATH (scratch too) gets the default one, as BuildKit gives it.
        info.env.add('PATH');
        for (const e of env) info.env.add(e.split('=', 1)[0]);
      }
    }
    if (info.name) names.add(info.name);
    return info;
  }
}

/** ConsistentInstructionCasing: each instruction against the casing most instructions use. */
function consistentCasing(
  instructions: Instruction[],
  warn: (rule: RuleName, message: string, at: Instruction) => void,
): void {
  let lower = 0;
  let upper = 0;
  for (const i of instructions) {
    if (i.cmd === i.cmd.toLowerCase()) lower++;
    else if (i.cmd === i.cmd.toUpperCase()) upper++;
  }
  const majorityLower = lower > upper;
  for (const i of instructions) {
    const casing =
      majorityLower && i.cmd !== i.cmd.toLowerCase()
        ? 'lowercase'
        : !majorityLower && i.cmd !== i.cmd.toUpperCase()
          ? 'uppercase'
          : '';
    if (casing)
      warn(
        'ConsistentInstructionCasing',
        `Command '${i.cmd}' should match the case of the command majority (${casing})`,
        i,
      );
  }
}

/** `FILE:LINE:COL: Rule: message`, the line `--check` prints for a finding. */
export function formatLintWarning(w: LintWarning): string {
  return `${w.location.file}:${w.location.line}:${w.location.column}: ${w.rule}: ${w.message}`;
}
