// The CLI's one mapping from an error's code to the exit status and the message: a table per code,
// and a real bug (a TypeError the engine throws) is never reported as bad input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CodedError, type Code } from '@tsbuild/errdefs';
import { DockerfileError } from '@tsbuild/parser';
import { InvalidReferenceError, remote, StoreError } from '@tsbuild/layerstore';
import { SandboxError } from '@tsbuild/sandbox';
import { BuildError, UsageError } from '../src/errors.js';
import { ContainerError } from '@tsbuild/containers';
import { describeError, exitFor } from '../src/cli/report.js';

const statuses: [Code, tsbuild: number, container: number][] = [
  ['invalid', 2, 125],
  ['not-found', 1, 125],
  ['conflict', 1, 125],
  ['unavailable', 1, 125],
  ['failed', 1, 125],
  ['internal', 1, 125],
  ['unknown', 1, 125],
];
for (const [code, tsbuild, container] of statuses)
  test(`code ${code}: exit ${tsbuild}, or ${container} around a container`, () => {
    assert.is(exitFor(code), tsbuild);
    assert.is(exitFor(code, 'container'), container);
  });

function typeError(): unknown {
  try {
    (JSON.parse('null') as { step: { run: () => void } }).step.run();
  } catch (e) {
    return e;
  }
  throw new Error('no TypeError');
}

// Each package's own error classes, as they are thrown: the status and the first line on stderr.
const cases: { name: string; err: unknown; status: number; line: RegExp }[] = [
  { name: 'UsageError', err: new UsageError('unknown flag: --x'), status: 2, line: /^ERROR: unknown flag: --x$/ },
  {
    name: 'DockerfileError',
    err: new DockerfileError('unknown-instruction', 'unknown instruction: FOO', {
      file: 'D',
      line: 2,
      column: 1,
      endLine: 2,
    }),
    status: 2,
    line: /^ERROR: unknown instruction: FOO$/,
  },
  { name: 'BuildError, bad input', err: new BuildError('D:1:1: bad', 2), status: 2, line: /^ERROR: D:1:1: bad$/ },
  { name: 'BuildError, a failing RUN', err: new BuildError('exit code: 3', 1), status: 1, line: /^ERROR: exit code/ },
  {
    name: 'InvalidReferenceError',
    err: new InvalidReferenceError('Bad Ref', 'bad'),
    status: 2,
    line: /^ERROR: invalid reference "Bad Ref": bad$/,
  },
  { name: 'StoreError not-found', err: new StoreError('not-found', 'no img'), status: 1, line: /^ERROR: no img$/ },
  {
    name: 'StoreError invalid (bad data read)',
    err: new StoreError('invalid', 'not JSON'),
    status: 1,
    line: /^ERROR: n/,
  },
  { name: 'StoreError corrupt', err: new StoreError('corrupt', 'blob x is corrupt'), status: 1, line: /^ERROR: blob/ },
  {
    name: 'RegistryError network',
    err: new remote.RegistryError('network', 'refused'),
    status: 1,
    line: /^ERROR: refused$/,
  },
  {
    name: 'RegistryError invalid',
    err: new remote.RegistryError('invalid', 'bad digest'),
    status: 1,
    line: /^ERROR: bad/,
  },
  { name: 'SandboxError', err: new SandboxError('no cgroup'), status: 1, line: /^ERROR: sandbox: no cgroup$/ },
  { name: 'ContainerError', err: new ContainerError('No such container: c'), status: 1, line: /^ERROR: No such/ },
  { name: 'a plain Error keeps the command', err: new Error('boom'), status: 1, line: /^ERROR: build: boom$/ },
  {
    name: 'a genuine TypeError is a bug, not bad input',
    err: typeError(),
    status: 1,
    line: /^ERROR: build: internal error \(a bug in tsbuild.*\): TypeError: Cannot read properties of null/,
  },
  {
    name: 'the JavaScript ReferenceError is a bug, not a bad reference',
    err: new ReferenceError('x is not defined'),
    status: 1,
    line: /^ERROR: build: internal error .*: ReferenceError: x is not defined$/,
  },
  {
    name: 'a class merely named like ours is not classified by its name',
    err: Object.assign(new Error('looks like usage'), { name: 'UsageError' }),
    status: 1,
    line: /^ERROR: build: looks like usage$/,
  },
  { name: 'a CodedError', err: new CodedError('conflict', 'name in use'), status: 1, line: /^ERROR: name in use$/ },
];
for (const c of cases)
  test(c.name, () => {
    const d = describeError(c.err, 'build');
    assert.is(d.status, c.status);
    assert.match(d.lines[0], c.line);
    assert.not.match(d.lines.join('\n'), /\n\s+at /, 'no stack trace');
  });

test('a failing RUN shows its output tail under the message', () => {
  const d = describeError(new BuildError('exit code: 3', 1, ['oops', 'more']), 'build');
  assert.equal(d.lines, ['ERROR: exit code: 3', '  > oops', '  > more']);
});

test('around a container, every failure of tsbuild is 125 with the same prefix', () => {
  const d = describeError(new ContainerError('No such container: c'), 'run', 'container');
  assert.is(d.status, 125);
  assert.equal(d.lines, ['ERROR: No such container: c']);
  assert.is(describeError(typeError(), 'exec', 'container').status, 125);
  assert.match(describeError(typeError(), 'exec', 'container').lines[0], /internal error/);
});

test('TSBUILD_DEBUG adds the stack', () => {
  const d = describeError(new Error('boom'), 'build', 'tsbuild', { debug: true });
  assert.match(d.lines.join('\n'), /\n\s+at /);
});

test('a password typed as user:password@host is never printed; a reference with a digest is left as it is', () => {
  const d = `sha256:${'0'.repeat(64)}`;
  const cases: [message: string, shown: string][] = [
    ['-t a:pw@127.0.0.1:1/x: bad', '-t ***@127.0.0.1:1/x: bad'],
    ['login to http://a:pw@reg.example/ failed', 'login to http://***@reg.example/ failed'],
    ['--cache-to type=registry,ref=a:pw@[::1]:5000/c: bad', '--cache-to type=registry,ref=***@[::1]:5000/c: bad'],
    ['name "u:p@localhost:5000/x"', 'name "***@localhost:5000/x"'],
    // A user name alone is no secret: kept, as in DOCKER_HOST's ssh://user@host.
    [
      '--load: DOCKER_HOST=ssh://user@host is not unix:///PATH',
      '--load: DOCKER_HOST=ssh://user@host is not unix:///PATH',
    ],
    ['name "u@localhost:5000/x"', 'name "u@localhost:5000/x"'],
    // A password may hold / and @ itself.
    ['-t a:p/w@reg.example/x: bad', '-t ***@reg.example/x: bad'],
    ['-t https://a:p@ss@reg.example:5000/x: bad', '-t https://***@reg.example:5000/x: bad'],
    ['GET https://registry.npmjs.org/@types/node: 404', 'GET https://registry.npmjs.org/@types/node: 404'],
    [`-t x@${d}: refusing`, `-t x@${d}: refusing`],
    [`-t localhost:5000/x:1@${d}: refusing`, `-t localhost:5000/x:1@${d}: refusing`],
    ['bad digest "sha256:abc"', 'bad digest "sha256:abc"'],
  ];
  for (const [message, shown] of cases)
    assert.equal(describeError(new UsageError(message), 'build').lines, [`ERROR: ${shown}`], message);
});

test.run();
