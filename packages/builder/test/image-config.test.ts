// The image-config rules (src/image/config.ts), without root: each row is a Dockerfile, parsed by the
// real parser, whose metadata steps are applied to scratch's config (or a base's) as the solver does;
// each expectation is a rule docker build / BuildKit follow (ENTRYPOINT clears an inherited CMD, ...).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildGraph, parse } from '@tsbuild/parser';
import type { ContainerConfig, ImageConfig } from '@tsbuild/layerstore';
import {
  applyStep,
  DefaultPath,
  expandPorts,
  historyText,
  inheritConfig,
  scratchConfig,
  setEnv,
  stepConfig,
  type StageConfig,
} from '../src/image/config.js';

const amd64 = { os: 'linux', architecture: 'amd64' };

/** The config of the last stage after its steps, starting from `base` (scratch's by default). */
function configOf(dockerfile: string, base: ImageConfig = scratchConfig(amd64)): StageConfig {
  const g = buildGraph(parse(dockerfile, { file: 'Dockerfile' }));
  const stage = g.stages[g.stages.length - 1];
  const state: StageConfig = { image: inheritConfig(base), cmdSet: false };
  for (const step of stage.steps) applyStep(state, step);
  return state;
}

const PATH = `PATH=${DefaultPath}`;
const cases: { name: string; dockerfile: string; base?: ContainerConfig; want: Partial<ContainerConfig> }[] = [
  { name: 'scratch has only PATH', dockerfile: 'FROM scratch\n', want: { Env: [PATH] } },
  {
    name: 'ENV appends; a key set again keeps its place',
    dockerfile: 'FROM scratch\nENV A=1 B=2\nENV A=3\n',
    want: { Env: [PATH, 'A=3', 'B=2'] },
  },
  {
    name: 'ENV PATH replaces the default in place',
    dockerfile: 'FROM scratch\nENV PATH=/x\n',
    want: { Env: ['PATH=/x'] },
  },
  {
    name: 'ENV sees earlier ENV',
    dockerfile: 'FROM scratch\nENV A=a\nENV B=${A}b\n',
    want: { Env: [PATH, 'A=a', 'B=ab'] },
  },
  {
    name: 'LABEL merges with the base labels',
    dockerfile: 'FROM scratch\nLABEL b=2 c="x y"\n',
    base: { Labels: { a: '1', b: 'old' } },
    want: { Labels: { a: '1', b: '2', c: 'x y' } },
  },
  {
    name: 'EXPOSE: default tcp, protocol lower-cased, ranges expanded',
    dockerfile: 'FROM scratch\nEXPOSE 80 53/UDP 8000-8002/tcp\n',
    want: { ExposedPorts: { '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {}, '8002/tcp': {} } },
  },
  {
    name: 'VOLUME, JSON and shell form',
    dockerfile: 'FROM scratch\nVOLUME ["/data"]\nVOLUME /a /b\n',
    want: { Volumes: { '/data': {}, '/a': {}, '/b': {} } },
  },
  { name: 'USER as written', dockerfile: 'FROM scratch\nUSER app:staff\n', want: { User: 'app:staff' } },
  {
    name: 'WORKDIR relative to the previous',
    dockerfile: 'FROM scratch\nWORKDIR /a\nWORKDIR b\n',
    want: { WorkingDir: '/a/b' },
  },
  {
    name: 'CMD shell form runs through the shell',
    dockerfile: 'FROM scratch\nCMD echo hi\n',
    want: { Cmd: ['/bin/sh', '-c', 'echo hi'] },
  },
  {
    name: "ENTRYPOINT clears the base image's CMD",
    dockerfile: 'FROM scratch\nENTRYPOINT ["/app"]\n',
    base: { Cmd: ['/bin/sh'] },
    want: { Entrypoint: ['/app'], Cmd: undefined },
  },
  {
    name: 'ENTRYPOINT [] leaves no Entrypoint (nor the inherited CMD), as BuildKit writes an empty list',
    dockerfile: 'FROM scratch\nENTRYPOINT []\n',
    base: { Entrypoint: ['/app'], Cmd: ['/bin/sh'] },
    want: { Entrypoint: undefined, Cmd: undefined },
  },
  {
    name: 'CMD [] leaves no Cmd, the ENTRYPOINT kept',
    dockerfile: 'FROM scratch\nCMD []\n',
    base: { Entrypoint: ['/app'], Cmd: ['/bin/sh'] },
    want: { Entrypoint: ['/app'], Cmd: undefined },
  },
  {
    name: 'ENTRYPOINT [] keeps a CMD set earlier in the same stage',
    dockerfile: 'FROM scratch\nCMD ["x"]\nENTRYPOINT []\n',
    want: { Entrypoint: undefined, Cmd: ['x'] },
  },
  {
    name: 'ENTRYPOINT keeps a CMD set earlier in the same stage',
    dockerfile: 'FROM scratch\nCMD ["--help"]\nENTRYPOINT ["/app"]\n',
    base: { Cmd: ['/bin/sh'] },
    want: { Entrypoint: ['/app'], Cmd: ['--help'] },
  },
  {
    name: 'SHELL changes the shell of a later shell-form CMD',
    dockerfile: 'FROM scratch\nSHELL ["/bin/bash", "-eo", "pipefail", "-c"]\nCMD echo hi\n',
    want: { Shell: ['/bin/bash', '-eo', 'pipefail', '-c'], Cmd: ['/bin/bash', '-eo', 'pipefail', '-c', 'echo hi'] },
  },
  {
    name: 'HEALTHCHECK with durations in nanoseconds and retries',
    dockerfile: 'FROM scratch\nHEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD ["/ok"]\n',
    want: { Healthcheck: { Test: ['CMD', '/ok'], Interval: 5e9, Timeout: 2e9, Retries: 3 } },
  },
  {
    name: 'HEALTHCHECK NONE',
    dockerfile: 'FROM scratch\nHEALTHCHECK NONE\n',
    want: { Healthcheck: { Test: ['NONE'] } },
  },
  { name: 'STOPSIGNAL', dockerfile: 'FROM scratch\nSTOPSIGNAL SIGINT\n', want: { StopSignal: 'SIGINT' } },
  {
    name: 'ONBUILD triggers are recorded as written',
    dockerfile: 'FROM scratch\nONBUILD RUN echo one\nONBUILD COPY . /src\n',
    want: { OnBuild: ['RUN echo one', 'COPY . /src'] },
  },
  {
    name: "the base's ONBUILD triggers are consumed, not inherited: OnBuild is null, as BuildKit writes it",
    dockerfile: 'FROM scratch\n',
    base: { OnBuild: ['RUN true'], Env: ['X=1'] },
    want: { OnBuild: null, Env: ['X=1'] },
  },
  { name: 'scratch: OnBuild null', dockerfile: 'FROM scratch\nENV A=1\n', want: { OnBuild: null } },
  // BuildKit sets ArgsEscaped with every CMD (docker on Linux ignores it); ENTRYPOINT leaves it as it was.
  { name: 'CMD (shell form) sets ArgsEscaped', dockerfile: 'FROM scratch\nCMD echo hi\n', want: { ArgsEscaped: true } },
  { name: 'CMD (exec form) sets ArgsEscaped', dockerfile: 'FROM scratch\nCMD ["a"]\n', want: { ArgsEscaped: true } },
  { name: 'CMD [] sets ArgsEscaped', dockerfile: 'FROM scratch\nCMD []\n', want: { ArgsEscaped: true } },
  {
    name: 'ENTRYPOINT alone leaves no ArgsEscaped',
    dockerfile: 'FROM scratch\nENTRYPOINT ["/app"]\n',
    want: { ArgsEscaped: undefined },
  },
  {
    name: "the base's ArgsEscaped is kept",
    dockerfile: 'FROM scratch\nENTRYPOINT ["/app"]\n',
    base: { Cmd: ['sh'], ArgsEscaped: true },
    want: { ArgsEscaped: true, Cmd: undefined },
  },
  {
    name: 'RUN, COPY and ARG change nothing in the config',
    dockerfile: 'FROM scratch\nARG V=1\nRUN echo $V\nCOPY a /a\n',
    want: { Env: [PATH], Cmd: undefined, WorkingDir: '/' },
  },
];

for (const c of cases)
  test(c.name, () => {
    const base = scratchConfig(amd64);
    if (c.base) base.config = { ...base.config, ...c.base };
    const got = configOf(c.dockerfile, base).image.config!;
    for (const [k, v] of Object.entries(c.want)) {
      // Undefined: no field at all (BuildKit's omitempty), not one holding null or [].
      if (v === undefined) assert.ok(!(k in got), `${k}: ${JSON.stringify(got[k as keyof ContainerConfig])}`);
      else assert.equal(got[k as keyof ContainerConfig], v, k);
    }
  });

test('MAINTAINER sets the author', () => {
  assert.is(configOf('FROM scratch\nMAINTAINER Jane <j@x>\n').image.author, 'Jane <j@x>');
});

test('inheritConfig copies: the base is not changed by the stage', () => {
  const base = scratchConfig(amd64);
  base.config = { ...base.config, Labels: { a: '1' }, OnBuild: ['RUN x'] };
  const before = structuredClone(base);
  configOf('FROM scratch\nLABEL a=2\nENV Z=1\n', base);
  assert.equal(base, before);
});

test('scratchConfig: platform, variant if given, PATH, WorkingDir /, OnBuild null (as BuildKit), no layers', () => {
  assert.equal(scratchConfig(amd64), {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: [PATH], WorkingDir: '/', OnBuild: null },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  });
  assert.is(scratchConfig({ os: 'linux', architecture: 'arm', variant: 'v7' }).variant, 'v7');
});

const envCases: [string[] | undefined, string, string, string[]][] = [
  [undefined, 'A', '1', ['A=1']],
  [['A=1', 'B=2'], 'A', '3', ['A=3', 'B=2']],
  [['A=1'], 'AB', '2', ['A=1', 'AB=2']],
  [['A=x=y'], 'A', '', ['A=']],
];
for (const [env, k, v, want] of envCases)
  test(`setEnv(${JSON.stringify(env)}, ${k}, ${JSON.stringify(v)})`, () => {
    const copy = env ? [...env] : undefined;
    assert.equal(setEnv(env, k, v), want);
    assert.equal(env, copy, 'the input is not changed');
  });

const ports: [string, string[]][] = [
  ['80', ['80/tcp']],
  ['80/UDP', ['80/udp']],
  ['1-3/sctp', ['1/sctp', '2/sctp', '3/sctp']],
  ['${PORT}', ['${PORT}/tcp']],
  // BuildKit keeps the container's port of a mapping, in decimal, its protocol lower case (differential case
  // expose-host-port).
  ['8080:80', ['80/tcp']],
  ['127.0.0.1:9090:90/udp', ['90/udp']],
  ['[::1]:7000-7001:70-71/SCTP', ['70/sctp', '71/sctp']],
  ['0100', ['100/tcp']],
  ['81/', ['81/tcp']],
];
for (const [spec, want] of ports) test(`expandPorts(${spec})`, () => assert.equal(expandPorts(spec), want));

test('expandPorts: a huge range stops at 65536 entries', () => assert.is(expandPorts('0-999999').length, 65536));

// The last step's history text; each expectation as `docker history` showed it for an image built by dockerd
// 20.10's BuildKit (an ARG declared twice is listed once, as later BuildKit does).
const history: [string, string][] = [
  ['RUN  echo   a', 'RUN /bin/sh -c echo   a # buildkit'],
  ['COPY  a   /b', 'COPY a /b # buildkit'],
  // COPY and ADD: the sources and the destination expanded, as words (never the JSON form), the destination
  // as written (not resolved against WORKDIR), flags left out but those below.
  ['ARG E=ee V=vv\nCOPY $E/../a.txt /exp-${V}', 'COPY ee/../a.txt /exp-vv # buildkit'],
  ['COPY ["a.txt", "/json dst"]', 'COPY a.txt /json dst # buildkit'],
  ['WORKDIR /w\nCOPY a.txt rel/', 'COPY a.txt rel/ # buildkit'],
  ['WORKDIR /w\nCOPY ./a.txt .', 'COPY ./a.txt . # buildkit'],
  ['COPY a.txt a\\\nb', 'COPY a.txt ab # buildkit'],
  ['FROM scratch AS s1\nFROM scratch\nCOPY --from=s1 /hi /fromhi', 'COPY /hi /fromhi # buildkit'],
  ['COPY --from=busybox /bin/true t', 'COPY /bin/true t # buildkit'],
  ['ADD t.tar.gz /targz/', 'ADD t.tar.gz /targz/ # buildkit'],
  ['ADD http://127.0.0.1:8765/u.tgz ut/', 'ADD http://127.0.0.1:8765/u.tgz ut/ # buildkit'],
  ['COPY --link --exclude=*.md . /d/', 'COPY . /d/ # buildkit'],
  // Flags BuildKit names since Dockerfile 1.7 (moby/buildkit#4597; dockerd 20.10 leaves them out), expanded.
  ['COPY --chown=1:2 --chmod=600 a.txt /o', 'COPY --chown=1:2 --chmod=600 a.txt /o # buildkit'],
  ['ARG U=5\nADD --chown=$U a.txt /o', 'ADD --chown=5 a.txt /o # buildkit'],
  ['COPY --parents a/./b /d/', 'COPY --parents a/./b /d/ # buildkit'],
  // Heredocs by name, after the sources (Dockerfile 1.4+; dockerd 20.10 has none).
  ['COPY <<EOF /etc/x\nhello\nEOF', 'COPY <<EOF /etc/x # buildkit'],
  ['COPY a <<-"EOT" /d/\n\thi\n\tEOT', 'COPY a <<EOT /d/ # buildkit'],
  ['WORKDIR /w', 'WORKDIR /w'],
  ['WORKDIR /a\nARG D=d\nWORKDIR b/$D', 'WORKDIR /a/b/d'],
  ['ENV A=1', 'ENV A=1'],
  ['ENV E1=x   E2="y z"', 'ENV E1=x E2=y z'],
  ['ARG G=g\nLABEL  x=1 \\\n  y="a  $G"', 'LABEL x=1 y=a  g'],
  ['ARG A=1 B\nRUN echo one', 'RUN |2 A=1 B= /bin/sh -c echo one # buildkit'],
  ['ARG A=1 B\nARG A=2\nENV B=env\nRUN ["echo", "x"]', 'RUN |2 A=2 B=env echo x # buildkit'],
  // A stage FROM another lists only its own ARGs.
  ['FROM scratch AS p\nARG A=1\nFROM p\nRUN echo child', 'RUN /bin/sh -c echo child # buildkit'],
  ['ARG P=81\nEXPOSE 90-91 80 ${P}/udp 80', 'EXPOSE map[80/tcp:{} 81/udp:{} 90/tcp:{} 91/tcp:{}]'],
  ['VOLUME /a /b', 'VOLUME [/a /b]'],
  ['VOLUME ["/data"]', 'VOLUME [/data]'],
  ['SHELL ["/bin/sh", "-ec"]', 'SHELL [/bin/sh -ec]'],
  ['CMD ["a", "b c", "q\\"\\\\"]', 'CMD ["a" "b c" "q\\"\\\\"]'],
  ['ENTRYPOINT echo "$U"', 'ENTRYPOINT ["/bin/sh" "-c" "echo \\"$U\\""]'],
  ['ARG U=nobody\nUSER ${U}:users', 'USER nobody:users'],
  ['ARG U=nobody\nSTOPSIGNAL SIG${U:+TERM}', 'STOPSIGNAL SIGTERM'],
  ['MAINTAINER  me  <m@x>', 'MAINTAINER me  <m@x>'],
  // Go's %q of the config's healthcheck, as current BuildKit: test, the four durations, retries as a rune
  // (dockerd 20.10's struct had no start interval, so it printed three durations).
  [
    'HEALTHCHECK --interval=5s --timeout=2s --start-period=1m --retries=4 CMD wget -q -O- http://x/ || exit 1',
    'HEALTHCHECK &{["CMD-SHELL" "wget -q -O- http://x/ || exit 1"] "5s" "2s" "1m0s" "0s" \'\\x04\'}',
  ],
  [
    'HEALTHCHECK --retries=2 CMD ["/bin/true", "x"]',
    'HEALTHCHECK &{["CMD" "/bin/true" "x"] "0s" "0s" "0s" "0s" \'\\x02\'}',
  ],
  ['HEALTHCHECK NONE', 'HEALTHCHECK &{["NONE"] "0s" "0s" "0s" "0s" \'\\x00\'}'],
  [
    'HEALTHCHECK --interval=1h2m3.5s --timeout=1500ms --start-period=1.25ms --start-interval=10m --retries=65 CMD :',
    'HEALTHCHECK &{["CMD-SHELL" ":"] "1h2m3.5s" "1.5s" "1.25ms" "10m0s" \'A\'}',
  ],
  [
    'HEALTHCHECK --timeout=250ms --retries=10 CMD true',
    'HEALTHCHECK &{["CMD-SHELL" "true"] "0s" "250ms" "0s" "0s" \'\\n\'}',
  ],
];
for (const [line, want] of history)
  test(`historyText: ${JSON.stringify(line)}`, () => {
    const g = buildGraph(parse(`FROM scratch\n${line}\n`, { file: 'Dockerfile' }));
    const steps = g.stages[g.stages.length - 1].steps;
    assert.is(historyText(steps[steps.length - 1]), want);
  });

// The solver gives each step a shallow copy of the config before it (stepConfig): that is safe only while no
// step writes into what the copy shares. Every metadata instruction, applied to each config in turn, twice.
test('stepConfig: applying any step to the copy leaves the config before it unchanged', () => {
  const dockerfile = [
    'FROM scratch',
    'ENV A=1 B=2',
    'LABEL x=1',
    'EXPOSE 80 90/udp',
    'VOLUME /v',
    'ONBUILD RUN true',
    'USER u',
    'WORKDIR /w',
    'ENTRYPOINT ["e"]',
    'CMD ["c"]',
    'SHELL ["/bin/bash", "-c"]',
    'HEALTHCHECK --interval=5s CMD true',
    'STOPSIGNAL SIGINT',
    'MAINTAINER m',
  ].join('\n');
  const steps = buildGraph(
    parse(`${dockerfile}\n${dockerfile.split('\n').slice(1).join('\n')}\n`, { file: 'Dockerfile' }),
  ).stages[0].steps;
  let prev: StageConfig = { image: scratchConfig(amd64), cmdSet: false };
  for (const step of steps) {
    const before = structuredClone(prev);
    const next: StageConfig = { image: stepConfig(prev.image), cmdSet: prev.cmdSet };
    applyStep(next, step);
    next.image.history!.push({ created_by: historyText(step) });
    assert.equal(prev, before, `${step.source}: the config before it is unchanged`);
    prev = next;
  }
  assert.is(prev.image.history?.length, steps.length);
  assert.equal(prev.image.config?.Labels, { x: '1' });
});

test.run();
