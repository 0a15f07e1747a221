// codeOf: an error's own code, else the first code down its cause chain; a JavaScript error class
// that only a bug throws is `internal`; anything else without a code is `unknown`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { codeOf, codes, CodedError, isCode, isInternal, isInvalid, isNotFound, type Code } from '../src/index.js';

const coded = (errdef: Code, message = 'x') => Object.assign(new Error(message), { errdef });
const typeError = (): unknown => {
  try {
    // A real TypeError from the engine, the kind a bug throws.
    (undefined as unknown as { x: () => void }).x();
  } catch (e) {
    return e;
  }
};

const cases: [string, unknown, Code][] = [
  ['CodedError invalid', new CodedError('invalid', 'bad flag'), 'invalid'],
  ['CodedError not-found', new CodedError('not-found', 'no such image'), 'not-found'],
  ['any object carrying errdef', coded('conflict'), 'conflict'],
  ['a code on the cause', new Error('wrapped', { cause: coded('unavailable') }), 'unavailable'],
  ['the outer code wins', Object.assign(new Error('o', { cause: coded('invalid') }), { errdef: 'failed' }), 'failed'],
  ['an unknown errdef string is ignored', coded('bogus' as Code), 'unknown'],
  ['a genuine TypeError', typeError(), 'internal'],
  ['a genuine ReferenceError', new ReferenceError('x is not defined'), 'internal'],
  ['a RangeError', new RangeError('Maximum call stack size exceeded'), 'internal'],
  ['a TypeError under a plain Error', new Error('while doing y', { cause: typeError() }), 'internal'],
  [
    'a TypeError wrapped in a coded error keeps the code',
    new CodedError('failed', 'f', { cause: typeError() }),
    'failed',
  ],
  [
    'a TypeError named otherwise is still a TypeError',
    Object.assign(new TypeError('t'), { name: 'StoreError' }),
    'internal',
  ],
  [
    'an Error named like a class is not classified by name',
    Object.assign(new Error('n'), { name: 'UsageError' }),
    'unknown',
  ],
  ['a plain Error', new Error('something'), 'unknown'],
  ['a Node system error', Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT', errno: -2 }), 'unknown'],
  ['a string thrown', 'oops', 'unknown'],
  ['undefined thrown', undefined, 'unknown'],
];

for (const [name, err, want] of cases) test(name, () => assert.is(codeOf(err), want));

test('a cause cycle ends', () => {
  const a = new Error('a') as Error & { cause?: unknown };
  const b = new Error('b', { cause: a });
  a.cause = b;
  assert.is(codeOf(a), 'unknown');
});

test('helpers agree with codeOf', () => {
  for (const c of codes) {
    const e = new CodedError(c, c);
    assert.is(isInvalid(e), c === 'invalid');
    assert.is(isNotFound(e), c === 'not-found');
    assert.is(isInternal(e), c === 'internal');
    assert.ok(isCode(c));
  }
  assert.not.ok(isCode('nope'));
});

test('CodedError is an Error with the message and name', () => {
  const e = new CodedError('conflict', 'name in use');
  assert.ok(e instanceof Error);
  assert.is(e.message, 'name in use');
  assert.is(e.errdef, 'conflict');
});

test.run();
