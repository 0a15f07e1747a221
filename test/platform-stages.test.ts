// FROM --platform: each stage has its own platform, as in BuildKit. Its base image is chosen for that
// platform (from an index in the store holding amd64 and arm64), its RUN steps run natively or under
// QEMU user emulation accordingly, its cache is its platform's, and COPY --from carries files across.
// The image config's platform is the final stage's, or the --platform given (BuildKit's rule).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { skip } from '@tsbuild/testkit';
import { cleanup, context, ok, repo, tsbuild, tempDirs } from './helpers/cli.js';
import { inspect, sh } from './helpers/image.js';
import { steps } from './helpers/progress.js';
import { noArm64Emulation } from './helpers/emulation.js';

const { temp, dirs } = tempDirs();
test.after(() => cleanup(...dirs));

const MultiBase = 'base/multi:1';
const ArmBase = 'base/arm:1';

/**
 * A store holding busybox for amd64 and arm64 under one tag (an index, as a pull of a multi-platform
 * tag leaves it) and busybox for arm64 alone under another: built here, no registry involved.
 */
function storeWithBases(): string {
  sh('bash', [join(repo, 'fixtures', 'busybox', 'make-rootfs.sh')]);
  sh('bash', [join(repo, 'fixtures', 'busybox-arm64', 'make-rootfs.sh')]);
  const ctx = context({ Dockerfile: 'FROM scratch\nARG TARGETARCH\nADD rootfs-$TARGETARCH.tar /\n' });
  dirs.push(ctx);
  copyFileSync(join(repo, 'fixtures', 'busybox', 'rootfs.tar'), join(ctx, 'rootfs-amd64.tar'));
  copyFileSync(join(repo, 'fixtures', 'busybox-arm64', 'rootfs.tar'), join(ctx, 'rootfs-arm64.tar'));
  const root = temp('store-stages');
  ok(tsbuild(['build', '-q', '--platform', 'linux/amd64,linux/arm64', '-t', MultiBase, ctx], { root }));
  ok(tsbuild(['build', '-q', '--platform', 'linux/arm64', '-t', ArmBase, ctx], { root }));
  return root;
}

// Each row checked against BuildKit (dockerd 20.10's, a private daemon with these bases loaded).
test('FROM --platform=linux/arm64 in a native build: the arm64 base, RUN emulated, an arm64 image', () => {
  const why = noArm64Emulation();
  if (why) return skip(why);
  const root = storeWithBases();
  const run = 'RUN uname -m > /arch';
  const cases = [
    // No --platform: the image is the final stage's platform (BuildKit: "implicit target").
    { df: `FROM --platform=linux/arm64 ${MultiBase}\n${run}`, flags: [], arch: 'arm64', uname: 'aarch64' },
    { df: `FROM --platform=linux/arm64 ${ArmBase}\n${run}`, flags: [], arch: 'arm64', uname: 'aarch64' },
    {
      df: `FROM --platform=arm64 ${MultiBase}\n${run}`,
      flags: ['--platform', 'arm64'],
      arch: 'arm64',
      uname: 'aarch64',
    },
    // A --platform given names the image's platform, whatever the stage ran as (BuildKit overwrites it).
    {
      df: `FROM --platform=linux/arm64 ${MultiBase}\n${run}`,
      flags: ['--platform', 'amd64'],
      arch: 'amd64',
      uname: 'aarch64',
    },
    // A stage FROM a stage runs as that stage: its own --platform is ignored, as BuildKit ignores it.
    {
      df: `FROM ${MultiBase} AS one\nFROM --platform=linux/arm64 one\n${run}`,
      flags: [],
      arch: 'amd64',
      uname: 'x86_64',
    },
    { df: `FROM --platform=linux/arm64 ${MultiBase} AS a\nFROM a\n${run}`, flags: [], arch: 'arm64', uname: 'aarch64' },
    // FROM scratch is the target's platform whatever its --platform says (BuildKit).
    {
      df:
        `FROM --platform=linux/arm64 ${MultiBase} AS a\n${run}\n` +
        'FROM --platform=linux/arm64 scratch\nCOPY --from=a /arch /',
      flags: [],
      arch: 'amd64',
      uname: 'aarch64',
    },
  ];
  for (const [i, c] of cases.entries()) {
    const ctx = context({ Dockerfile: c.df + '\n' });
    dirs.push(ctx);
    const out = join(temp('out'), 'fs');
    const what = `${c.df} ${c.flags.join(' ')}`;
    const r = tsbuild(['build', '-q', ...c.flags, '-t', `one:${i}`, '-o', out, ctx], { root });
    assert.is(r.code, 0, `${what}\n${r.stderr}`);
    assert.is(readFileSync(join(out, 'arch'), 'utf8'), `${c.uname}\n`, what);
    const config = inspect(root, `one:${i}`).ImageConfig;
    assert.equal([config.os, config.architecture], ['linux', c.arch], what);
  }
});

const CrossDockerfile = [
  `FROM --platform=$BUILDPLATFORM ${MultiBase} AS build`,
  'RUN uname -m > /built-on',
  'ARG TARGETARCH',
  'RUN echo $TARGETARCH > /built-for',
  `FROM ${MultiBase}`,
  'COPY --from=build /built-on /built-for /',
  'RUN uname -m > /runs-on',
  '',
].join('\n');

test('FROM --platform=$BUILDPLATFORM under --platform linux/arm64: that stage runs natively, its files copied', () => {
  const why = noArm64Emulation();
  if (why) return skip(why);
  const root = storeWithBases();
  const ctx = context({ Dockerfile: CrossDockerfile });
  dirs.push(ctx);
  const out = join(temp('out'), 'fs');
  ok(tsbuild(['build', '-q', '--platform', 'linux/arm64', '-t', 'cross:1', '-o', out, ctx], { root }));
  const read = (f: string) => readFileSync(join(out, f), 'utf8');
  assert.equal([read('built-on'), read('built-for'), read('runs-on')], ['x86_64\n', 'arm64\n', 'aarch64\n']);
  const config = inspect(root, 'cross:1').ImageConfig;
  assert.equal([config.os, config.architecture], ['linux', 'arm64']);
});

test('cache: per-platform stages are kept apart by platform, the $BUILDPLATFORM stage is shared', () => {
  const why = noArm64Emulation();
  if (why) return skip(why);
  const root = storeWithBases();
  const ctx = context({ Dockerfile: CrossDockerfile });
  dirs.push(ctx);
  const build = (platform: string) =>
    steps(ok(tsbuild(['build', '--progress=plain', '--platform', platform, ctx], { root })).stderr);
  const all = [
    'RUN uname -m > /built-on',
    'RUN echo $TARGETARCH > /built-for',
    'COPY --from=build /built-on /built-for /',
  ];
  assert.equal(build('linux/amd64').ran, [...all, 'RUN uname -m > /runs-on']);
  const arm = build('linux/arm64');
  // The build stage stands on the same (amd64) base and runs the same command: a hit. TARGETARCH differs.
  assert.equal(arm.cached, ['RUN uname -m > /built-on']);
  assert.equal(arm.ran, all.slice(1).concat('RUN uname -m > /runs-on'));
  // Each platform's own records are there: rebuilding either runs nothing.
  for (const platform of ['linux/amd64', 'linux/arm64']) assert.equal(build(platform).ran, [], platform);
});

test('--dry-run [--platform]: the keys of the real build, each stage for its own platform', () => {
  const why = noArm64Emulation();
  if (why) return skip(why);
  const root = storeWithBases();
  const ctx = context({
    Dockerfile: [
      `FROM --platform=$BUILDPLATFORM ${MultiBase} AS build`,
      'ARG TARGETARCH',
      'RUN echo $TARGETARCH > /built-for',
      `FROM --platform=linux/arm64 ${MultiBase} AS arm64`,
      'RUN uname -m > /a',
      `FROM ${MultiBase}`,
      'COPY --from=build /built-for /',
      'COPY --from=arm64 /a /',
      'RUN uname -m > /runs-on',
      '',
    ].join('\n'),
  });
  dirs.push(ctx);
  const keys = (args: string[]) => {
    const doc = JSON.parse(ok(tsbuild(['build', '--explain=json', ...args, ctx], { root })).stdout);
    // By label: stages run concurrently, so the rows come in the order they finish.
    return {
      allCached: doc.allCached as boolean,
      keys: (doc.steps as { label: string; key?: string }[]).map((s) => `${s.label} ${s.key ?? ''}`).sort(),
    };
  };
  for (const flags of [[], ['--platform', 'linux/arm64']]) {
    const built = keys(['--progress=quiet', ...flags]);
    const dry = keys(['--dry-run', ...flags]);
    assert.ok(dry.allCached, flags.join(' '));
    assert.equal(dry.keys, built.keys, flags.join(' '));
  }
});

test('--platform a,b, --no-cache(-filter): the $BUILDPLATFORM stage runs once, its output shared', () => {
  // BuildKit solves every platform at once: a stage whose steps are the same for each (FROM
  // --platform=$BUILDPLATFORM, no TARGET* arg) is one vertex, run once even under --no-cache, so every
  // platform's image carries the same output. Two runs would give each platform its own random stamp.
  const why = noArm64Emulation();
  if (why) return skip(why);
  const root = storeWithBases();
  const ctx = context({
    Dockerfile: [
      `FROM --platform=$BUILDPLATFORM ${MultiBase} AS build`,
      'RUN cat /proc/sys/kernel/random/uuid > /stamp',
      `FROM ${MultiBase}`,
      'COPY --from=build /stamp /stamp',
      '',
    ].join('\n'),
  });
  dirs.push(ctx);
  const read = context({ Dockerfile: 'FROM stamp:1\n' });
  dirs.push(read);
  for (const flags of [['--no-cache'], ['--no-cache-filter', 'build']]) {
    const r = ok(
      tsbuild(['build', '--progress=plain', ...flags, '--platform', 'linux/amd64,linux/arm64', '-t', 'stamp:1', ctx], {
        root,
      }),
    );
    const run = 'RUN cat /proc/sys/kernel/random/uuid > /stamp';
    const s = steps(r.stderr);
    assert.equal([s.ran.filter((t) => t === run), s.cached.filter((t) => t === run)], [[run], [run]], flags.join(' '));
    const stamps = ['linux/amd64', 'linux/arm64'].map((platform) => {
      const out = join(temp('out'), 'fs');
      ok(tsbuild(['build', '-q', '--platform', platform, '-o', out, read], { root }));
      return readFileSync(join(out, 'stamp'), 'utf8');
    });
    assert.match(stamps[0], /^[0-9a-f-]{36}\n$/);
    assert.is(stamps[1], stamps[0], `${flags.join(' ')}: the same stage output in every platform's image`);
  }
});

test("--annotation manifest[PLATFORM]: without --platform, the platform is the image's (the final stage's)", () => {
  // BuildKit takes the implicit target's platform from the image config for the exporter, so a
  // platform's annotations follow the image the final stage's FROM --platform made. No RUN: no emulation.
  const root = storeWithBases();
  const ctx = context({ Dockerfile: `FROM --platform=linux/arm64 ${ArmBase} AS arm64\n` });
  dirs.push(ctx);
  const annotations = ['manifest[linux/arm64]:com.example.arch=arm64', 'manifest[linux/amd64]:com.example.arch=amd64'];
  ok(tsbuild(['build', '-q', ...annotations.flatMap((a) => ['--annotation', a]), '-t', 'ann:1', ctx], { root }));
  const doc = inspect(root, 'ann:1');
  assert.is(doc.ImageConfig.architecture, 'arm64');
  assert.equal(doc.Manifest.annotations, { 'com.example.arch': 'arm64' });
});

test('a platform the store\'s index lacks, not pullable: the error names it, not "not in the store"', () => {
  sh('bash', [join(repo, 'fixtures', 'busybox', 'make-rootfs.sh')]);
  const root = temp('store-lacks');
  const base = context({ Dockerfile: 'FROM scratch\nCOPY x /x\n', x: 'x\n' });
  dirs.push(base);
  // Port 1 on localhost: nothing listens, so the pull fails at once, with no outside registry asked.
  const ref = 'localhost:1/multi:1';
  ok(tsbuild(['build', '-q', '--platform', 'linux/amd64,linux/arm64', '-t', ref, base], { root }));
  for (const [df, flags, want] of [
    [`FROM --platform=linux/riscv64 ${ref}\n`, [], 'linux/riscv64 (FROM --platform)'],
    [`FROM ${ref}\n`, ['--platform', 'linux/s390x'], 'linux/s390x (--platform)'],
  ] as const) {
    const ctx = context({ Dockerfile: df });
    dirs.push(ctx);
    const r = tsbuild(['build', ...flags, ctx], { root });
    assert.is(r.code, 1, r.stderr);
    assert.ok(
      r.stderr.includes(
        `ERROR: ${join(ctx, 'Dockerfile')}:1:1: base image "${ref}" is in the store for linux/amd64, linux/arm64/v8, ` +
          `not ${want}`,
      ),
      r.stderr,
    );
  }
});

test('a FROM --platform this machine cannot emulate: the build says why before any step, never a stack trace', () => {
  // riscv64: scripts/setup.sh registers only qemu-aarch64; a machine with systemd-binfmt may have them all.
  if (existsSync('/proc/sys/fs/binfmt_misc/qemu-riscv64'))
    return skip('this machine emulates riscv64 (qemu-riscv64 is registered)', { required: false });
  const root = temp('store-riscv');
  const base = context({ Dockerfile: 'FROM scratch\nCOPY x /x\n', x: 'not an executable\n' });
  dirs.push(base);
  ok(tsbuild(['build', '-q', '--platform', 'linux/riscv64', '-t', 'rv:1', base], { root }));
  const ctx = context({ Dockerfile: 'FROM --platform=linux/riscv64 rv:1 AS rv\nRUN /x\n' });
  dirs.push(ctx);
  const r = tsbuild(['build', '--progress=plain', ctx], { root });
  assert.is.not(r.code, 0, r.stderr);
  assert.match(r.stderr, /FROM --platform=linux\/riscv64: RUN steps cannot run here: .*riscv64/);
  assert.ok(
    r.stderr.indexOf('RUN steps cannot run here') < r.stderr.indexOf('RUN /x'),
    `said before the step runs:\n${r.stderr}`,
  );
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
});

test.run();
