// The build checks through the CLI: `build --check` reports BuildKit's rules with file:line:col and
// exits 1 without building; a normal build prints them as warnings; `# check=skip=...;error=true` and
// the BUILDKIT_DOCKERFILE_CHECK build arg are honoured. The rules themselves: packages/parser/test/lint.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tsbuild } from './helpers/cli.js';

const root = storeWithBase();
const dirty = [
  `FROM ${Base} as Build`, //        1: FromAsCasing, StageNameCasing
  'ENV PATH=$PAHT:/opt/bin', //      2: UndefinedVar (the base's Env is read from the store)
  'MAINTAINER me@example.org', //    3: MaintainerDeprecated
  'copy a /a', //                    4: ConsistentInstructionCasing
  'CMD echo hi', //                  5: JSONArgsRecommended
  '',
].join('\n');
const ctx = context({ Dockerfile: dirty, a: 'a' });
const clean = context({ Dockerfile: `FROM ${Base} AS build\nCOPY a /a\nCMD ["cat", "/a"]\n`, a: 'a' });
const t = (args: string[]) => tsbuild(args, { root });

test.after(() => cleanup(root, ctx, clean));

test('--check: every finding as FILE:LINE:COL: Rule: message, exit 1, nothing built', () => {
  const r = t(['build', '--check', '-t', 'chk:1', ctx]);
  assert.is(r.code, 1, r.stderr);
  const file = join(ctx, 'Dockerfile');
  const lines = r.stdout.trim().split('\n');
  const want = [
    `${file}:1:1: FromAsCasing: 'as' and 'FROM' keywords' casing do not match`,
    `${file}:1:1: StageNameCasing: Stage name 'Build' should be lowercase`,
    `${file}:2:1: UndefinedVar: Usage of undefined variable '$PAHT' (did you mean $PATH?)`,
    `${file}:3:1: MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label`,
    `${file}:4:1: ConsistentInstructionCasing: Command 'copy' should match the case of the command majority ` +
      '(uppercase)',
    `${file}:5:1: JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior ` +
      'related to OS signals',
  ];
  assert.equal(
    lines.map((l) => l.replace(/ \(https:\/\/docs\.docker\.com\/go\/dockerfile\/rule\/[a-z-]+\/\)$/, '')).sort(),
    want.sort(),
  );
  assert.match(r.stderr, /Check complete, 6 warnings have been found!/);
  assert.is(t(['inspect', 'chk:1']).code, 1, '--check builds nothing');
});

test('--check on a clean Dockerfile: exit 0', () => {
  const r = ok(t(['build', '--check', clean]));
  assert.is(r.stdout, '');
  assert.match(r.stderr, /Check complete, no warnings found/);
});

test('a normal build prints the findings as warnings and succeeds', () => {
  const r = ok(t(['build', '--progress=plain', '-t', 'chk:2', ctx]));
  assert.match(r.stderr, /WARNING: .*Dockerfile:1:1: FromAsCasing: /);
  assert.match(r.stderr, /WARNING: .*Dockerfile:5:1: JSONArgsRecommended: /);
  ok(t(['inspect', 'chk:2']));
});

test('# check=error=true fails the build before any step; skip= and BUILDKIT_DOCKERFILE_CHECK are honoured', () => {
  const strict = context({ Dockerfile: `# check=error=true\n${dirty}`, a: 'a' });
  const r = t(['build', '--progress=plain', '-t', 'chk:3', strict]);
  assert.is(r.code, 1);
  const all = 'ConsistentInstructionCasing, FromAsCasing, JSONArgsRecommended, MaintainerDeprecated, StageNameCasing';
  assert.ok(r.stderr.includes(`ERROR: lint violation found for rules: ${all}, UndefinedVar\n`), r.stderr);
  assert.not.match(r.stderr, /#\d+ \[build 2\//, 'no step ran');
  const rules = 'ConsistentInstructionCasing,FromAsCasing,JSONArgsRecommended,MaintainerDeprecated,StageNameCasing';
  const skipped = context({ Dockerfile: `# check=skip=${rules},UndefinedVar;error=true\n${dirty}`, a: 'a' });
  ok(t(['build', '--check', skipped]));
  const arg = t(['build', '--check', '--build-arg', 'BUILDKIT_DOCKERFILE_CHECK=skip=all', ctx]);
  assert.is(arg.code, 0, arg.stdout);
  cleanup(strict, skipped);
});

test('a bad # check= directive is a Dockerfile error naming its line, exit 2', () => {
  const bad = context({ Dockerfile: `# check=bogus=1\nFROM ${Base}\n` });
  const r = t(['build', '--check', bad]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /^ERROR: .*Dockerfile:1:1: invalid check option "bogus"\n$/);
  cleanup(bad);
});

test('a build warns only about the stages it builds; --check about every stage', () => {
  const two = context({ Dockerfile: `FROM ${Base} AS unused\nMAINTAINER me\nFROM ${Base} AS used\nRUN true\n` });
  const r = ok(t(['build', '--progress=plain', '--target', 'used', two]));
  assert.not.match(r.stderr, /MaintainerDeprecated/);
  assert.match(t(['build', '--check', '--target', 'used', two]).stdout, /Dockerfile:2:1: MaintainerDeprecated: /);
  cleanup(two);
});

test('a duplicate stage name is reported once, as DuplicateStageName', () => {
  const dup = context({ Dockerfile: `FROM ${Base} AS b\nFROM ${Base} AS b\nRUN true\n` });
  const r = ok(t(['build', '--progress=plain', dup]));
  assert.equal(r.stderr.match(/Duplicate stage name "b"/g)?.length, 1, r.stderr);
  assert.match(r.stderr, /Dockerfile:2:1: DuplicateStageName: /);
  cleanup(dup);
});

test('--check: FromPlatformFlagConstDisallowed for a constant FROM --platform, not a variable one', () => {
  const c = context({
    Dockerfile: `FROM --platform=linux/amd64 ${Base} AS base\nFROM --platform=$BUILDPLATFORM ${Base} AS b\n`,
  });
  try {
    const r = t(['build', '--check', c]);
    assert.is(r.code, 1, r.stderr);
    assert.is(
      r.stdout,
      `${join(c, 'Dockerfile')}:1:1: FromPlatformFlagConstDisallowed: FROM --platform flag should not use constant ` +
        'value "linux/amd64" (https://docs.docker.com/go/dockerfile/rule/from-platform-flag-const-disallowed/)\n',
    );
  } finally {
    cleanup(c);
  }
});

test.run();
