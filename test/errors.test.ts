// What a person sees when something is wrong: a located message, the right exit code,
// no stack trace, and nothing tagged.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Base, cleanup, context, ok, storeWithBase, tsbuild } from './helpers/cli.js';

const root = storeWithBase();

const cases: { name: string; args?: string[]; dockerfile?: string; code: number; stderr: RegExp }[] = [
  { name: 'unknown flag', args: ['build', '--frobnicate', '.'], code: 2, stderr: /unknown flag: --frobnicate/ },
  { name: 'missing context', args: ['build'], code: 2, stderr: /requires exactly 1 argument/ },
  { name: 'bad --network', args: ['build', '--network', 'bridge2', '.'], code: 2, stderr: /--network: "bridge2"/ },
  { name: 'bad tag', args: ['build', '-t', 'UPPER:1', '.'], code: 2, stderr: /-t UPPER:1/ },
  { name: 'unknown instruction, located', dockerfile: `FROM ${Base}\nFOO bar\n`, code: 2, stderr: /Dockerfile:2:1/ },
  { name: 'empty Dockerfile', dockerfile: `# nothing\n`, code: 2, stderr: /Dockerfile:\d+:\d+.*no instructions/i },
  {
    name: 'failing RUN reports command, exit code and output tail',
    dockerfile: `FROM ${Base}\nRUN echo about to fail && echo oops >&2 && exit 3\n`,
    code: 1,
    stderr: new RegExp(
      String.raw`process "/bin/sh -c echo about to fail && echo oops >&2 && exit 3" ` +
        String.raw`did not complete successfully: exit code: 3[\s\S]*> oops`,
    ),
  },
  {
    name: 'command not found',
    dockerfile: `FROM ${Base}\nRUN ["/no/such/binary"]\n`,
    code: 1,
    stderr: /no\/such\/binary/,
  },
  {
    name: 'missing COPY source',
    dockerfile: `FROM ${Base}\nCOPY nothere /x\n`,
    code: 1,
    stderr: /Dockerfile:2:\d+: "nothere" not found in the build context/,
  },
  // An image that is neither a stage nor in the store nor pullable: said at the instruction naming it.
  // (localhost:1 refuses at once, on any machine, with or without a network.)
  {
    name: 'base image not in the store',
    dockerfile: `FROM localhost:1/nope:1\n`,
    code: 1,
    stderr: /Dockerfile:1:1: base image "localhost:1\/nope:1" is not in the store/,
  },
  {
    name: 'a later FROM naming an image that cannot be pulled',
    dockerfile: `FROM ${Base} AS a\nRUN true\n\n  FROM localhost:1/nope:2\nCOPY --from=a /bin/sh /sh\n`,
    code: 1,
    stderr: /Dockerfile:4:3: base image "localhost:1\/nope:2" is not in the store/,
  },
  {
    name: 'COPY --from a stage name that does not exist',
    dockerfile: `FROM ${Base}\nRUN true\nCOPY --from=localhost:1/nope /x /x\n`,
    code: 1,
    stderr: /Dockerfile:3:1: base image "localhost:1\/nope" is not in the store/,
  },
  {
    name: 'RUN --mount from= a stage name that does not exist',
    dockerfile: `FROM ${Base}\nRUN --mount=from=localhost:1/nope,target=/m true\n`,
    code: 1,
    stderr: /Dockerfile:2:1: base image "localhost:1\/nope" is not in the store/,
  },
  // EXPOSE: BuildKit's rule (go-connections' ParsePortSpec, after variables are expanded): [[ip:]hostport:]port,
  // a port being a number or a range of 0-65535, with an optional /tcp, /udp or /sctp (any case).
  ...[
    { arg: 'abc', why: /invalid port "abc"/ },
    { arg: '80 $P', why: /invalid port "nope"/ },
    { arg: '80/foo', why: /invalid protocol "foo"/ },
    { arg: '70000', why: /invalid port "70000"/ },
    { arg: '90-80', why: /invalid port "90-80"/ },
    { arg: '-1', why: /invalid port "-1"/ },
    { arg: 'x:80', why: /invalid host port "x"/ },
    { arg: 'nope.ip:8080:80', why: /invalid IP address "nope.ip"/ },
  ].map(({ arg, why }) => ({
    name: `EXPOSE ${arg}`,
    dockerfile: `FROM ${Base}\nARG P=nope\nEXPOSE ${arg}\n`,
    code: 2,
    stderr: new RegExp(String.raw`Dockerfile:3:\d+: EXPOSE: ${why.source}`),
  })),
  { name: 'unknown --target', dockerfile: `FROM ${Base} AS a\n`, args: ['--target', 'zzz'], code: 2, stderr: /zzz/ },
  // buildx's image exporter: a bad value is said before the build, naming the flag and the key.
  {
    name: '-o type=image with a push= that is not a boolean',
    dockerfile: `FROM ${Base}\n`,
    args: ['-o', 'type=image,push=yes'],
    code: 2,
    stderr: /^ERROR: --output type=image,push=yes: push: "yes" is not a boolean \(true or false\)$/m,
  },
  // Said before the build, naming the flag (it was Node's ENOENT after the build, the image already tagged).
  {
    name: '--iidfile in a directory that does not exist',
    dockerfile: `FROM ${Base}\n`,
    args: ['--iidfile', '/nonexistent-tsbuild-dir/iid'],
    code: 2,
    stderr: /^ERROR: --iidfile \/nonexistent-tsbuild-dir\/iid: no directory \/nonexistent-tsbuild-dir to write it in$/m,
  },
];

for (const c of cases) {
  test(c.name, () => {
    const ctx = c.dockerfile ? context({ Dockerfile: c.dockerfile }) : undefined;
    const args = c.dockerfile
      ? ['build', '--progress=plain', '-t', 'should-not-exist:1', ...(c.args ?? []), ctx!]
      : c.args!;
    const r = tsbuild(args, { root });
    assert.is(r.code, c.code, `exit code (stderr: ${r.stderr})`);
    assert.match(r.stderr, c.stderr);
    assert.not.match(r.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
    assert.is(tsbuild(['inspect', 'should-not-exist:1'], { root }).code, 1, 'nothing tagged');
    if (ctx) cleanup(ctx);
  });
}

// Every command's error line starts with ERROR: (report.ts); run and exec keep docker's statuses: run's 125 for
// tsbuild's own failure, 126 when the command cannot run, 127 when it is not found; exec's 1 when there is no
// running container to exec in, 126 when its process cannot start.
const commands: { args: string[]; code: number; stderr: RegExp }[] = [
  { args: ['run', '--rm', Base, '/no/such/binary'], code: 127, stderr: /^ERROR: .*\/no\/such\/binary/m },
  { args: ['run', '--rm', Base, '/etc/passwd'], code: 126, stderr: /^ERROR: .*\/etc\/passwd/m },
  { args: ['run', '--rm', 'no/such:image'], code: 125, stderr: /^ERROR: Unable to find image 'no\/such:image'/m },
  { args: ['run', '--rm', 'Bad Ref'], code: 125, stderr: /^ERROR: .*Bad Ref/m },
  { args: ['run', '--cpus', 'x', Base], code: 2, stderr: /^ERROR: --cpus: "x" is not a positive number$/m },
  { args: ['exec', 'no-such-container', 'true'], code: 1, stderr: /^ERROR: No such container: no-such-container$/m },
  // A relative -w was taken from / in run (docker refuses it), and exec's error named the sandbox, not the flag.
  { args: ['run', '--rm', '-w', 'rel', Base, 'pwd'], code: 2, stderr: /^ERROR: -w: "rel" is not an absolute path$/m },
  { args: ['exec', '-w', 'rel', 'no-such-container', 'pwd'], code: 2, stderr: /^ERROR: -w: "rel" is not an absolute/m },
  { args: ['rm', 'no-such-container'], code: 1, stderr: /^ERROR: No such container: no-such-container$/m },
  { args: ['start', 'no-such-container'], code: 1, stderr: /^ERROR: No such container: no-such-container$/m },
  { args: ['volume', 'inspect', 'no-such-volume'], code: 1, stderr: /^ERROR: No such volume: no-such-volume$/m },
  { args: ['volume', 'rm', 'no-such-volume'], code: 1, stderr: /^ERROR: No such volume: no-such-volume$/m },
  { args: ['rmi', 'no-such-image:1'], code: 1, stderr: /^ERROR: No such image: no-such-image:1$/m },
  { args: ['inspect', 'no-such-image:1'], code: 1, stderr: /^ERROR: / },
];
for (const c of commands)
  test(`tsbuild ${c.args.join(' ')}: exit ${c.code}, ERROR: line`, () => {
    const r = tsbuild(c.args, { root });
    assert.is(r.code, c.code, `exit code (stderr: ${r.stderr})`);
    assert.match(r.stderr, c.stderr);
    assert.not.match(r.stderr, /^(Error|tsbuild): /m, 'the one prefix');
    assert.not.match(r.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
  });

test('EXPOSE takes every form BuildKit takes', () => {
  const ports = '0 80/ 80/TCP 80/sctp 80-90/udp 8080:80 1.2.3.4:8080:80 [::1]:8080:80/udp 0100';
  const ctx = context({ Dockerfile: `FROM ${Base}\nEXPOSE ${ports}\n` });
  ok(tsbuild(['build', '-q', '-t', 'expose-forms:1', ctx], { root }));
  cleanup(ctx);
});

// An output directory that cannot be made (procfs refuses mkdir with ENOENT, on which Node's recursive mkdir
// used to spin forever): the flag and the directory said, exit 1, nothing left half-made.
for (const type of ['local', 'oci,tar=false']) {
  test(`-o type=${type},dest= under /proc: a located error, not a hang`, () => {
    const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo > /f\n` });
    const dest = `/proc/tsbuild-no-such-dir/${type.replace(/\W/g, '-')}`;
    const r = tsbuild(['build', '--progress=plain', '-o', `type=${type},dest=${dest}`, ctx], { root });
    assert.is(r.code, 1, r.stderr);
    const flag = `--output dest=${dest}`.replace(/[/]/g, '\\/');
    assert.match(r.stderr, new RegExp(`ERROR: ${flag}: cannot create directory /proc/tsbuild-no-such-dir\\b`));
    assert.not.match(r.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
    cleanup(ctx);
  });
}

test.after(() => cleanup(root));
test.run();
