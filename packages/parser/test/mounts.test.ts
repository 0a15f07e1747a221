// RUN --mount targets, spellings and defaults, as BuildKit's dockerfile2llb resolves them: a relative or missing
// target joins the step's working directory, only a resolved "/" is refused, dst/destination spell target and src
// spells source, and a cache mount's default id is its target as written, cleaned (path.Clean(mount.Target)).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DockerfileError, buildGraph, parse, parseMount, type BaseConfig, type RunMount } from '../src/index.js';

const id = (w: string) => w;

const rows: { value: string; workdir: string; want: Partial<RunMount> | { error: RegExp } }[] = [
  { value: 'type=bind', workdir: '/src', want: { type: 'bind', target: '/src', source: '' } },
  { value: 'type=bind,src=a,dst=b', workdir: '/w', want: { type: 'bind', target: '/w/b', source: 'a' } },
  {
    value: 'type=bind,source=a,destination=../b',
    workdir: '/w/x',
    want: { type: 'bind', target: '/w/b', source: 'a' },
  },
  {
    value: 'target=/root/.cache,type=cache',
    workdir: '/go',
    want: { type: 'cache', target: '/root/.cache', id: '/root/.cache' },
  },
  { value: 'type=cache,target=.cache', workdir: '/app', want: { type: 'cache', target: '/app/.cache', id: '.cache' } },
  { value: 'type=cache,target=./a//b/', workdir: '/app', want: { type: 'cache', target: '/app/a/b', id: 'a/b' } },
  { value: 'type=cache', workdir: '/app', want: { type: 'cache', target: '/app', id: '.' } },
  { value: 'type=cache,dst=x,id=mine', workdir: '/app', want: { type: 'cache', target: '/app/x', id: 'mine' } },
  { value: 'type=tmpfs', workdir: '/t', want: { type: 'tmpfs', target: '/t' } },
  { value: 'type=tmpfs,dst=scratch', workdir: '/t', want: { type: 'tmpfs', target: '/t/scratch' } },
  { value: 'type=secret,id=x', workdir: '/', want: { type: 'secret', target: '/run/secrets/x', id: 'x' } },
  { value: 'type=bind', workdir: '/', want: { error: /invalid mount target "\/"/ } },
  { value: 'type=cache,target=.', workdir: '/', want: { error: /invalid mount target "\/"/ } },
  { value: 'type=tmpfs,dst=/', workdir: '/app', want: { error: /invalid mount target "\/"/ } },
  { value: 'type=bind,target=a/..', workdir: '/', want: { error: /invalid mount target "\/"/ } },
];

for (const r of rows) {
  test(`--mount=${r.value} in WORKDIR ${r.workdir}`, () => {
    if ('error' in r.want) {
      const re = r.want.error;
      assert.throws(
        () => parseMount(r.value, id, r.workdir, 0),
        (e: Error) => e.constructor.name === 'MountError' && re.test(e.message),
      );
      return;
    }
    const got = parseMount(r.value, id, r.workdir, 0) as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(r.want)) assert.equal(got[k], v, k);
  });
}

function runMounts(text: string, configs?: Record<string, BaseConfig>): RunMount[] {
  const df = parse(text, { file: 'Dockerfile' });
  const g = buildGraph(df, { file: 'Dockerfile', ...(configs ? { baseConfig: (ref: string) => configs[ref] } : {}) });
  const stage = g.stages[g.stages.length - 1];
  const run = stage.steps.find((s) => s.kind === 'run');
  if (!run || run.kind !== 'run') throw new Error('no RUN step');
  return run.mounts;
}

// The Dockerfile of the issue, as a real project writes it: no WORKDIR of its own, the base image's is used.
const golang = `FROM golang AS build
RUN --mount=target=/root/.cache,type=cache \\
    --mount=type=bind xx-go build .
`;

test("a bind mount with no target lands on the base image's working directory", () => {
  const m = runMounts(golang, { golang: { WorkingDir: '/go' } });
  assert.equal(
    m.map((x) => [x.type, x.target]),
    [
      ['cache', '/root/.cache'],
      ['bind', '/go'],
    ],
  );
});

test("planned without the base image (tsbuild parse): the target waits for the base's working directory", () => {
  const m = runMounts(golang);
  assert.equal(
    m.map((x) => [x.type, x.target]),
    [
      ['cache', '/root/.cache'],
      ['bind', '/'],
    ],
  );
});

test('with the base image known to have no working directory, the same mount is refused with its place', () => {
  try {
    runMounts(golang, { golang: {} });
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, DockerfileError);
    assert.is((e as DockerfileError).code, 'bad-mount');
    assert.match((e as Error).message, /invalid mount target "\/"/);
    assert.is((e as DockerfileError).location?.line, 3);
  }
});

test('an absolute WORKDIR makes the working directory known again, even without the base image', () => {
  assert.throws(() => runMounts('FROM golang\nWORKDIR /\nRUN --mount=type=bind true\n'), /invalid mount target/);
  assert.equal(
    runMounts('FROM golang\nWORKDIR /src\nRUN --mount=type=bind true\n').map((x) => x.target),
    ['/src'],
  );
  assert.equal(
    runMounts('FROM scratch\nRUN --mount=type=bind,target=w true\n').map((x) => x.target),
    ['/w'],
  );
});

test.run();
