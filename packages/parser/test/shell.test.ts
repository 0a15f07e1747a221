import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expandWord, expandWords } from '../src/index.js';
import { shared } from './paths.js';

const dir = join(shared, 'conformance', 'buildkit-shell');

test('buildkit envVarTest (all non-Windows lines)', () => {
  const env = new Map([['PWD', '/home'], ['SHELL', 'bash'], ['KOREAN', '한국어'], ['NULL', '']]);
  const failures: string[] = [];
  let total = 0;
  for (const line of readFileSync(join(dir, 'envVarTest'), 'utf8').split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [platform, input, expected] = line.split('|').map((s) => s.trim()) as [string, string, string];
    if (platform === 'W') continue;
    total++;
    let got: string;
    try { got = expandWord(input, env); } catch { got = 'error'; }
    if (got !== expected) failures.push(`${input}: got ${JSON.stringify(got)}, want ${JSON.stringify(expected)}`);
  }
  console.log(`shell envVarTest: ${total - failures.length}/${total}`);
  assert.equal(failures, []);
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
    let got: string;
    try { got = expandWords(input.trim(), env).join(','); } catch { got = 'error'; }
    if (got !== expected) failures.push(`${input}: got ${JSON.stringify(got)}, want ${JSON.stringify(expected)}`);
  }
  console.log(`shell wordsTest: ${total - failures.length}/${total}`);
  assert.equal(failures, []);
});

// The forms the upstream tables lack. Expected values follow POSIX sh / BuildKit.
const env = new Map([['V', 'foo/bar/baz.tar.gz'], ['E', ''], ['S', 'a b']]);
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
  ['${V:#x}', 'error'],
  ['${V:=x}', 'error'],
  ['${V', 'error'],
  ['${V/a', 'error'],
  ['"$S"', 'a b'],
  ['$S', 'a b'],
  ['\\$V', '$V'],
];

test('own table: colon-less forms, ?msg, patterns', () => {
  for (const [input, want] of cases) {
    let got: string;
    try { got = expandWord(input, env); } catch (e) {
      got = want.startsWith('error: ') ? `error: ${(e as Error).message}` : 'error';
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
