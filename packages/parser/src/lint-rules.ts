// BuildKit's build-check rule table: each rule's name, description and documentation link, and the shape
// of a finding. Split out of lint.ts so that the list of rules reads on its own, apart from the walk
// over the Dockerfile that finds them.
import type { Instruction } from './ast.js';
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

/** Each rule's description, worded as BuildKit's. */
export const rules = {
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
  FromPlatformFlagConstDisallowed: 'FROM --platform flag should not use a constant value',
} as const;
export type RuleName = keyof typeof rules;
export const RULES: readonly RuleName[] = Object.keys(rules) as RuleName[];

const kebab = (name: string) =>
  name
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2')
    .replace(/([a-z])([A-Z])/g, '$1-$2')
    .toLowerCase();
export const ruleUrl = (name: RuleName): string => `https://docs.docker.com/go/dockerfile/rule/${kebab(name)}/`;

/** Records a finding for `rule` at an instruction (unless the `# check=` directive skips the rule). */
export type Warn = (rule: RuleName, message: string, at: Instruction) => void;

/** `FILE:LINE:COL: Rule: message`, the line `--check` prints for a finding. */
export function formatLintWarning(w: LintWarning): string {
  return `${w.location.file}:${w.location.line}:${w.location.column}: ${w.rule}: ${w.message}`;
}
