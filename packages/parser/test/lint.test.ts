// The build checks, a firing and a quiet case per rule. Messages and the cases' behaviour follow
// BuildKit's linter (its rule definitions and its lint tests); each case lists every finding expected.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DockerfileError, RULES, lint, parse, parseCheckOption, ruleUrl } from '../src/index.js';

type Finding = [rule: string, line: number, message: string];
const alpineEnv = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];

function findings(text: string, check?: string): Finding[] {
  const df = parse(text, { file: 'Dockerfile' });
  const r = lint(df, { baseEnv: (ref) => (ref.startsWith('alpine') ? alpineEnv : undefined), check });
  return r.warnings
    .map((w): Finding => [w.rule, w.location.line, w.message])
    .sort((a, b) => a[1] - b[1] || a[2].localeCompare(b[2]));
}

const cases: [string, string, Finding[]][] = [
  // FromAsCasing
  [
    'FromAsCasing fires',
    'FROM scratch as base\n',
    [['FromAsCasing', 1, "'as' and 'FROM' keywords' casing do not match"]],
  ],
  [
    'FromAsCasing fires (lower from)',
    'from scratch AS base\n',
    [['FromAsCasing', 1, "'AS' and 'from' keywords' casing do not match"]],
  ],
  [
    'FromAsCasing quiet',
    'FROM scratch AS base\nfrom scratch as base2\nFROM base\n',
    [['ConsistentInstructionCasing', 2, "Command 'from' should match the case of the command majority (uppercase)"]],
  ],
  // StageNameCasing
  [
    'StageNameCasing fires',
    'FROM scratch AS BadStageName\n',
    [['StageNameCasing', 1, "Stage name 'BadStageName' should be lowercase"]],
  ],
  ['StageNameCasing quiet', 'FROM scratch AS good_name\n', []],
  // DuplicateStageName
  [
    'DuplicateStageName fires',
    'FROM scratch AS b\nFROM scratch AS b\n',
    [['DuplicateStageName', 2, 'Duplicate stage name "b", stage names should be unique']],
  ],
  ['DuplicateStageName quiet', 'FROM scratch AS b1\nFROM scratch AS b2\n', []],
  // UndefinedVar
  [
    'UndefinedVar fires before the ARG',
    'FROM alpine\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n',
    [['UndefinedVar', 2, "Usage of undefined variable '$foo'"]],
  ],
  [
    'UndefinedVar suggests',
    'FROM alpine\nARG DIR_ASSETS=assets/\nCOPY $DIR_ASSET .\nENV PATH=$PAHT:/tmp/bin\n',
    [
      ['UndefinedVar', 3, "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)"],
      ['UndefinedVar', 4, "Usage of undefined variable '$PAHT' (did you mean $PATH?)"],
    ],
  ],
  [
    'UndefinedVar quiet',
    'FROM alpine AS base\nARG foo=Dockerfile\nFROM base\nCOPY $foo ${nope:-x} .\nRUN echo $PATH $X\n',
    [],
  ],
  ['UndefinedVar quiet when the base is unknown', 'FROM unknown:1\nENV A=$FROM_BASE\n', []],
  ['UndefinedVar quiet: scratch has the default PATH', 'FROM scratch\nENV PATH=$PATH:/opt/bin\n', []],
  // UndefinedArgInFrom
  [
    'UndefinedArgInFrom fires',
    'FROM --platform=$BULIDPLATFORM scratch\nARG tag=latest\n',
    [['UndefinedArgInFrom', 1, "FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)"]],
  ],
  [
    'UndefinedArgInFrom fires without a suggestion',
    'ARG tag=latest\nFROM busybox:${tag}${version} AS b\n',
    [['UndefinedArgInFrom', 2, "FROM argument 'version' is not declared"]],
  ],
  [
    'UndefinedArgInFrom quiet',
    'ARG base=scratch\nARG DEBUG\nFROM --platform=$BUILDPLATFORM $base\nFROM scratch${DEBUG}\n',
    [],
  ],
  // FromPlatformFlagConstDisallowed
  [
    'FromPlatformFlagConstDisallowed fires',
    'FROM --platform=linux/amd64 alpine AS base\nFROM --platform=aarch64 alpine\n',
    [
      ['FromPlatformFlagConstDisallowed', 1, 'FROM --platform flag should not use constant value "linux/amd64"'],
      ['FromPlatformFlagConstDisallowed', 2, 'FROM --platform flag should not use constant value "aarch64"'],
    ],
  ],
  [
    'FromPlatformFlagConstDisallowed quiet: a variable, or the platform in the stage name',
    'ARG P=linux/arm64\nFROM --platform=$BUILDPLATFORM alpine\nFROM --platform=${P} alpine\n' +
      'FROM --platform=linux/arm64 alpine AS build-arm64\nFROM --platform=linux/amd64 alpine AS linux-base\n' +
      'FROM --platform=not/a/plat/form alpine\n',
    [],
  ],
  // JSONArgsRecommended
  [
    'JSONArgsRecommended fires',
    'FROM scratch\nCMD mycommand\nENTRYPOINT mycommand\n',
    [
      [
        'JSONArgsRecommended',
        2,
        'JSON arguments recommended for CMD to prevent unintended behavior related to OS signals',
      ],
      [
        'JSONArgsRecommended',
        3,
        'JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals',
      ],
    ],
  ],
  [
    'JSONArgsRecommended quiet (SHELL, also inherited)',
    'FROM scratch AS base\nSHELL ["/bin/x"]\nFROM base\nCMD c\n',
    [],
  ],
  ['JSONArgsRecommended quiet (JSON)', 'FROM scratch\nCMD ["c"]\n', []],
  // MaintainerDeprecated
  [
    'MaintainerDeprecated fires',
    'FROM scratch\nMAINTAINER me@example.org\n',
    [['MaintainerDeprecated', 2, 'Maintainer instruction is deprecated in favor of using label']],
  ],
  ['MaintainerDeprecated quiet', 'FROM scratch\nLABEL org.opencontainers.image.authors="me@example.org"\n', []],
  // WorkdirRelativePath
  [
    'WorkdirRelativePath fires',
    'FROM scratch\nWORKDIR app/\n',
    [['WorkdirRelativePath', 2, 'Relative workdir "app/" can have unexpected results if the base image changes']],
  ],
  ['WorkdirRelativePath quiet', 'FROM scratch AS a\nWORKDIR /app\nFROM a AS b\nWORKDIR subdir/\n', []],
  // ConsistentInstructionCasing
  [
    'ConsistentInstructionCasing fires (minority lower)',
    'FROM scratch\ncopy a /foo\nCOPY a /bar\n',
    [['ConsistentInstructionCasing', 2, "Command 'copy' should match the case of the command majority (uppercase)"]],
  ],
  [
    'ConsistentInstructionCasing fires (mixed)',
    'frOM scratch\nfrom scratch\n',
    [['ConsistentInstructionCasing', 1, "Command 'frOM' should match the case of the command majority (lowercase)"]],
  ],
  ['ConsistentInstructionCasing quiet', 'from scratch\ncopy a /foo\ncopy a /bar\n', []],
  // SecretsUsedInArgOrEnv
  [
    'SecretsUsedInArgOrEnv fires',
    'FROM scratch\nARG SECRET_PASSPHRASE\nENV password=bar secret=baz\nENV git_key=\n',
    [
      ['SecretsUsedInArgOrEnv', 2, 'Do not use ARG or ENV instructions for sensitive data (ARG "SECRET_PASSPHRASE")'],
      ['SecretsUsedInArgOrEnv', 3, 'Do not use ARG or ENV instructions for sensitive data (ENV "password")'],
      ['SecretsUsedInArgOrEnv', 3, 'Do not use ARG or ENV instructions for sensitive data (ENV "secret")'],
      ['SecretsUsedInArgOrEnv', 4, 'Do not use ARG or ENV instructions for sensitive data (ENV "git_key")'],
    ],
  ],
  ['SecretsUsedInArgOrEnv quiet', 'FROM scratch\nENV apikeys=1 sunflower=foo PUBLIC_KEY=\nARG public_token\n', []],
  // InvalidDefaultArgInFrom
  [
    'InvalidDefaultArgInFrom fires',
    'ARG VERSION\nARG IMAGE\nFROM busybox:$VERSION\nFROM $IMAGE\n',
    [
      [
        'InvalidDefaultArgInFrom',
        3,
        'Default value for ARG busybox:$VERSION results in empty or invalid base image name',
      ],
      ['InvalidDefaultArgInFrom', 4, 'Default value for ARG $IMAGE results in empty or invalid base image name'],
    ],
  ],
  [
    'InvalidDefaultArgInFrom quiet',
    'ARG VERSION="latest"\nARG V=""\nFROM busybox:${VERSION}\nFROM busybox:stable${V}\n',
    [],
  ],
  // MultipleInstructionsDisallowed
  [
    'MultipleInstructionsDisallowed fires',
    'FROM scratch\nENTRYPOINT ["/a"]\nCMD ["/a"]\nCOPY x /x\nENTRYPOINT ["/b"]\nCMD ["/b"]\n',
    [
      [
        'MultipleInstructionsDisallowed',
        2,
        'Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used',
      ],
      [
        'MultipleInstructionsDisallowed',
        3,
        'Multiple CMD instructions should not be used in the same stage because only the last one will be used',
      ],
    ],
  ],
  [
    'MultipleInstructionsDisallowed quiet (other stage)',
    'FROM scratch AS a\nCMD ["/a"]\nFROM a AS b\nCMD ["/b"]\n',
    [],
  ],
  // LegacyKeyValueFormat
  [
    'LegacyKeyValueFormat fires',
    'FROM scratch\nENV testkey value\nLABEL key value\n',
    [
      ['LegacyKeyValueFormat', 2, '"ENV key=value" should be used instead of legacy "ENV key value" format'],
      ['LegacyKeyValueFormat', 3, '"LABEL key=value" should be used instead of legacy "LABEL key value" format'],
    ],
  ],
  ['LegacyKeyValueFormat quiet', 'FROM scratch\nENV testkey=value\nLABEL key=value\n', []],
];
for (const [name, text, want] of cases) test(name, () => assert.equal(findings(text), want));

test('# check=skip=A,B and skip=all silence those rules; error=true is reported', () => {
  const text = 'FROM scratch as base\ncopy a .\n';
  assert.equal(findings(`# check=skip=all\n${text}`), []);
  assert.equal(findings(`# check=skip=ConsistentInstructionCasing,FromAsCasing\n${text}`), []);
  assert.equal(findings(`#check=skip=ConsistentInstructionCasing\n${text}`), [
    ['FromAsCasing', 2, "'as' and 'FROM' keywords' casing do not match"],
  ]);
  const r = lint(parse(`# check=error=true\n${text}`));
  assert.ok(r.config.error);
  assert.is(r.warnings.length, 2);
  // The build arg overrides the directive, as BUILDKIT_DOCKERFILE_CHECK does.
  assert.equal(findings(`# check=error=true\n${text}`, 'skip=all'), []);
});

test('a bad check directive is a Dockerfile error at its line', () => {
  assert.throws(() => parseCheckOption('skip'), /invalid check option "skip"/);
  assert.throws(() => parseCheckOption('error=maybe'), /failed to parse check option/);
  try {
    lint(parse('# check=bogus=1\nFROM scratch\n'));
    assert.unreachable();
  } catch (e) {
    assert.instance(e, DockerfileError);
    assert.is((e as DockerfileError).location?.line, 1);
    assert.match((e as Error).message, /invalid check option "bogus"/);
  }
});

test("each rule's documentation link is BuildKit's", () => {
  assert.is(ruleUrl('JSONArgsRecommended'), 'https://docs.docker.com/go/dockerfile/rule/json-args-recommended/');
  assert.is(ruleUrl('FromAsCasing'), 'https://docs.docker.com/go/dockerfile/rule/from-as-casing/');
  assert.is(
    ruleUrl('FromPlatformFlagConstDisallowed'),
    'https://docs.docker.com/go/dockerfile/rule/from-platform-flag-const-disallowed/',
  );
  assert.is(RULES.length, 14);
});

test.run();
