// Build checks: BuildKit's Dockerfile linter rules (same names, messages and documentation links), run
// on the syntax tree without building. Pure: what a base image contributes (its Env) is passed in.
//
// Rules: FromAsCasing, StageNameCasing, DuplicateStageName, UndefinedVar, UndefinedArgInFrom,
// JSONArgsRecommended, MaintainerDeprecated, WorkdirRelativePath, ConsistentInstructionCasing,
// SecretsUsedInArgOrEnv, InvalidDefaultArgInFrom, MultipleInstructionsDisallowed, LegacyKeyValueFormat,
// FromPlatformFlagConstDisallowed.
// The `# check=skip=A,B;error=true` directive (or BUILDKIT_DOCKERFILE_CHECK) says which to skip and
// whether a warning fails the build.
//
// This file walks the stages; the rule table is lint-rules.ts, the directive lint-directive.ts, the
// questions about names and references lint-names.ts, and the whole-file casing check lint-casing.ts.
import type { Dockerfile, Instruction } from './ast.js';
import { consistentCasing } from './lint-casing.js';
import { parseCheckOption, type LintConfig } from './lint-directive.js';
import { defaultedRefs, PLATFORM_ARGS, publicName, reference, secretName, suggest } from './lint-names.js';
import { ruleUrl, rules, type LintWarning, type RuleName } from './lint-rules.js';
import { DockerfileError } from './errors.js';
import { normalizePlatform } from './platform.js';
import { lex } from './shell/lexer.js';

export { parseCheckOption, type LintConfig } from './lint-directive.js';
export { formatLintWarning, ruleUrl, RULES, type LintWarning, type RuleName } from './lint-rules.js';

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

  /**
   * BuildKit's FromPlatformFlagConstDisallowed: a --platform that names no variable pins the stage to one
   * platform, unless the stage's name says so (holds the platform's OS or architecture). A value that is
   * not a platform is the build's error, not a finding.
   */
  function constPlatform(word: string, stageName: string, ins: Instruction) {
    let r;
    try {
      r = lex(word, () => undefined, { escape });
    } catch {
      return;
    }
    if (r.matched.size > 0 || r.unmatched.size > 0) return;
    const p = normalizePlatform(r.word, 'linux/amd64');
    if (p === undefined) return;
    const [os = '', arch = ''] = p.split('/');
    if (stageName.includes(os) || stageName.includes(arch)) return;
    warn(
      'FromPlatformFlagConstDisallowed',
      `FROM --platform flag should not use constant value ${JSON.stringify(r.word)}`,
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
    if (platform !== undefined) constPlatform(platform, name?.toLowerCase() ?? '', ins);
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
