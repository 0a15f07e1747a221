import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expandWord, expandWords } from '../src/index.js';
import { ExpansionError } from '../src/errors.js';
import { conformance } from './paths.js';

const dir = join(conformance, 'buildkit-shell');
// Every case of the copied tables (see the data's README): 228 non-Windows lines of envVarTest, 24 of wordsTest.
const ENV_VAR_CASES = 228,
  WORDS_CASES = 24;

/**
 * The result of one expansion as the tables write it: the output, or 'error' when the lexer rejected the
 * input. Only the lexer's own ExpansionError counts as a rejection; anything else (a TypeError, a
 * RangeError) is a bug, reported under its class so it can never match an expected 'error'.
 */
function outcome(run: () => string): string {
  try {
    return run();
  } catch (e) {
    if (e instanceof ExpansionError) return 'error';
    return `crash: ${(e as Error)?.name}: ${(e as Error)?.message}`;
  }
}

test('only an ExpansionError reads as an expected error', () => {
  assert.is(
    outcome(() => expandWord('${V:=x}', new Map())),
    'error',
  );
  assert.is(
    outcome(() => {
      throw new TypeError('x is undefined');
    }),
    'crash: TypeError: x is undefined',
  );
  assert.is(
    outcome(() => {
      throw new Error('other');
    }),
    'crash: Error: other',
  );
});

test('buildkit envVarTest (all non-Windows lines)', () => {
  const env = new Map([
    ['PWD', '/home'],
    ['SHELL', 'bash'],
    ['KOREAN', '한국어'],
    ['NULL', ''],
  ]);
  const failures: string[] = [];
  let total = 0;
  for (const line of readFileSync(join(dir, 'envVarTest'), 'utf8').split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [platform, input, expected] = line.split('|').map((s) => s.trim()) as [string, string, string];
    if (platform === 'W') continue;
    total++;
    const got = outcome(() => expandWord(input, env));
    if (got !== expected) failures.push(`${input}: got ${JSON.stringify(got)}, want ${JSON.stringify(expected)}`);
  }
  console.log(`shell envVarTest: ${total - failures.length}/${total}`);
  assert.equal(failures, []);
  assert.is(total, ENV_VAR_CASES, 'cases in the table');
});

test('buildkit wordsTest', () => {
  const env = new Map<string, string>();
  const failures: string[] = [];
  let total = 0;
  for (const line of readFileSync(join(dir, 'wordsTest'), 'utf8').split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    if (line.startsWith('ENV ')) {
      const rest = line.slice(4).replace(/^ +/, '');
      const eq = rest.indexOf('=');
      env.set(rest.slice(0, eq), rest.slice(eq + 1));
      continue;
    }
    const [input, expectedRaw] = line.split('|') as [string, string];
    const expected = expectedRaw.replace(/^\s+/, '');
    total++;
    const got = outcome(() => expandWords(input.trim(), env).join(','));
    if (got !== expected) failures.push(`${input}: got ${JSON.stringify(got)}, want ${JSON.stringify(expected)}`);
  }
  console.log(`shell wordsTest: ${total - failures.length}/${total}`);
  assert.equal(failures, []);
  assert.is(total, WORDS_CASES, 'cases in the table');
});

// The forms the upstream tables lack. Expected values follow POSIX sh / BuildKit; 'error: M' means the
// lexer rejects the input with an ExpansionError whose message is M.
const env = new Map([
  ['V', 'foo/bar/baz.tar.gz'],
  ['E', ''],
  ['S', 'a b'],
]);
const cases: [string, string][] = [
  ['${U-def}', 'def'],
  ['${E-def}', ''],
  ['${E:-def}', 'def'],
  ['${U+alt}', ''],
  ['${E+alt}', 'alt'],
  ['${E:+alt}', ''],
  ['${V+alt}', 'alt'],
  ['${V?x}', 'foo/bar/baz.tar.gz'],
  ['${E?x}', ''],
  ['${U?must be set}', 'error: U: must be set'],
  ['${U?}', 'error: U: is not allowed to be unset'],
  ['${E:?need a value}', 'error: E: need a value'],
  ['${E:?}', 'error: E: is not allowed to be empty'],
  ['${V#*/}', 'bar/baz.tar.gz'],
  ['${V##*/}', 'baz.tar.gz'],
  ['${V%.*}', 'foo/bar/baz.tar'],
  ['${V%%.*}', 'foo/bar/baz'],
  ['${V#foo}', '/bar/baz.tar.gz'],
  ['${V#nomatch}', 'foo/bar/baz.tar.gz'],
  ['${V%?z}', 'foo/bar/baz.tar.'],
  ['${V/bar/qux}', 'foo/qux/baz.tar.gz'],
  ['${V//a/A}', 'foo/bAr/bAz.tAr.gz'],
  ['${V/b*z/X}', 'foo/X'], // longest match, as in sh
  ['${V//?/x}', 'xxxxxxxxxxxxxxxxxx'],
  ['${U/a/b}', ''],
  ['${V:#x}', 'error: unsupported modifier (:#) in substitution'],
  ['${V:=x}', 'error: unsupported modifier (:=) in substitution'],
  ['${V', 'error: unsupported modifier () in substitution'],
  ['${V/a', "error: syntax error: missing '/' in ${}"],
  ['"$S"', 'a b'],
  ['$S', 'a b'],
  ['\\$V', '$V'],
];

test('own table: colon-less forms, ?msg, patterns', () => {
  for (const [input, want] of cases) {
    let got: string;
    try {
      got = expandWord(input, env);
    } catch (e) {
      if (!(e instanceof ExpansionError)) throw e;
      got = `error: ${e.message}`;
    }
    assert.is(got, want, input);
  }
});

test('escape character ` and field splitting', () => {
  assert.is(expandWord('a`$V', env, { escape: '`' }), 'a$V');
  assert.is(expandWord('a\\b', env, { escape: '`' }), 'a\\b');
  assert.equal(expandWords('x $S "y z"', env), ['x', 'a', 'b', 'y z']);
});

test.run();
