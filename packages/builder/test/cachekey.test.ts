// The cache-key inputs (src/solver/cachekey.ts), without root: a key is the digest of its named
// inputs in order, a group enters as one digest but is spelled out for --explain, and firstChange
// names the first input that differs from the last build, in words.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { firstChange, KeyBuilder, sha256, type Inputs } from '../src/solver/cachekey.js';

const hex = (s: string) => createHash('sha256').update(s).digest('hex');

test('sha256 is hex of the bytes', () => {
  assert.is(sha256('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.is(sha256(Buffer.from('abc')), sha256('abc'));
});

test('the key is the digest of "name\\0digest\\n" per input, in order', () => {
  const kb = new KeyBuilder().addDigest('parent', 'p1').add('instruction', 'RUN x');
  assert.is(kb.key(), `sha256:${hex(`parent\0p1\ninstruction\0${hex('RUN x')}\n`)}`);
  assert.equal(kb.inputs, [
    ['parent', 'p1'],
    ['instruction', hex('RUN x')],
  ]);
});

// Keys that must differ: each pair differs in exactly one respect.
const differ: [string, () => KeyBuilder, () => KeyBuilder][] = [
  ['another value', () => new KeyBuilder().add('env:A', '1'), () => new KeyBuilder().add('env:A', '2')],
  ['another name, same value', () => new KeyBuilder().add('env:A', '1'), () => new KeyBuilder().add('arg:A', '1')],
  [
    'the same inputs in another order',
    () => new KeyBuilder().add('a', '1').add('b', '2'),
    () => new KeyBuilder().add('b', '2').add('a', '1'),
  ],
  ['one input more', () => new KeyBuilder().add('a', '1'), () => new KeyBuilder().add('a', '1').add('b', '')],
  [
    'a name that would run into its value',
    () => new KeyBuilder().addDigest('ab', 'c'),
    () => new KeyBuilder().addDigest('a', 'bc'),
  ],
  ['another parent', () => new KeyBuilder().addDigest('parent', 'x'), () => new KeyBuilder().addDigest('parent', 'y')],
  [
    'a group with another digest',
    () => new KeyBuilder().addGroup('files:/src', 'd1', () => []),
    () => new KeyBuilder().addGroup('files:/src', 'd2', () => []),
  ],
];
for (const [name, a, b] of differ) test(`keys differ: ${name}`, () => assert.is.not(a().key(), b().key()));

test('keys are equal for equal inputs (deterministic)', () => {
  const make = () => new KeyBuilder().addDigest('parent', 'p').add('instruction', 'COPY . /').add('env:A', '1');
  assert.is(make().key(), make().key());
});

test('a group enters the key as its digest; its expansion is read only for inputs', () => {
  let expanded = 0;
  const files: Inputs = [
    ['file:/src/a', 'ha'],
    ['file:/src/b', 'hb'],
  ];
  const kb = new KeyBuilder().addDigest('parent', 'p').addGroup('files:/src', 'merkle', () => {
    expanded++;
    return files;
  });
  assert.is(kb.key(), new KeyBuilder().addDigest('parent', 'p').addDigest('files:/src', 'merkle').key());
  assert.is(expanded, 0, 'key() does not expand');
  assert.equal(kb.inputs, [['parent', 'p'], ...files]);
  assert.equal(kb.inputs, [['parent', 'p'], ...files]);
  // Not kept: a step holds a tree's per-file inputs only while they are compared or written.
  assert.is(expanded, 2, 'inputs are spelled out at each read, never kept');
  kb.add('chown-user', '');
  assert.is(kb.inputs.length, 4, 'an input added later is seen');
  assert.is(expanded, 3);
});

const b: Inputs = [
  ['parent:[stage-0 1/3] FROM x', 'p'],
  ['instruction', 'i'],
  ['env:PATH', 'e'],
  ['file:/src/a.txt', 'f'],
];
const change = (i: number, digest: string): Inputs => b.map(([n, d], j) => [n, j === i ? digest : d]);
const explain: [string, Inputs | undefined, Inputs, string][] = [
  ['no earlier build', undefined, b, 'no earlier build of this step'],
  ['nothing differs', b, b, 'its cache entry is missing from the store (pruned, or built elsewhere)'],
  ['the parent', b, change(0, 'p2'), 'the step before it changed ([stage-0 1/3] FROM x)'],
  ['the instruction', b, change(1, 'i2'), 'the instruction text changed'],
  ['an ENV', b, change(2, 'e2'), 'ENV PATH changed'],
  ['a file', b, change(3, 'f2'), 'file /src/a.txt changed'],
  [
    'the first of two changes is named',
    b,
    change(1, 'i2').map(([n, d]) => [n, n === 'env:PATH' ? 'x' : d]),
    'the instruction text changed',
  ],
  ['a new input', b, [...b, ['arg:V', 'v']], 'build arg V is new'],
  ['a removed input', b, b.slice(0, 3), 'file /src/a.txt was removed'],
  ['a base image', [['base:alpine:3', 'd1']], [['base:alpine:3', 'd2']], 'base image alpine:3 now has another digest'],
  [
    'a source URL keeps its colons',
    [['source:https://x/y', 'a']],
    [['source:https://x/y', 'b']],
    'source https://x/y changed',
  ],
  [
    'a stage copied from',
    [['from:builder', 'a']],
    [['from:builder', 'b']],
    'the stage or image it copies from (builder) changed',
  ],
  ['a mount', [['mount:/cache', 'a']], [['mount:/cache', 'b']], 'mount /cache changed'],
  [
    'a control character in a file name is shown escaped',
    [['file:/a\nb', 'a']],
    [['file:/a\nb', 'b']],
    'file /a\\x0ab changed',
  ],
  ['an input of another kind', [['chown-user', 'a']], [['chown-user', 'b']], 'chown-user changed'],
];
for (const [name, before, now, want] of explain)
  test(`firstChange: ${name}`, () => assert.is(firstChange(before, now), want));

test.run();
