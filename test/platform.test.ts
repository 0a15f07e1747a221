// --platform: the native platform under any of its spellings, bad values refused, a base for another
// platform refused, and a foreign platform (linux/arm64, from Debian's arm64 busybox-static) whose RUN
// steps run under QEMU user emulation (binfmt_misc + qemu-user-static), as does `tsbuild run` of it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { skip, startRegistry } from '@tsbuild/testkit';
import { Base, cleanup, context, ok, repo, storeWithBase, tsbuild, tempDirs } from './helpers/cli.js';
import { inspect, sh } from './helpers/image.js';
import { steps } from './helpers/progress.js';
import { noArm64Emulation } from './helpers/emulation.js';

const { temp, dirs } = tempDirs();
test.after(() => cleanup(...dirs));

test('the native platform by any spelling builds the same image as no --platform', () => {
  const root = storeWithBase(temp('store-native'));
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo native > /n\n` });
  dirs.push(ctx);
  ok(tsbuild(['build', '-q', '-t', 'native:0', ctx], { root }));
  const want = inspect(root, 'native:0').ManifestDigest;
  for (const spelling of ['linux/amd64', 'amd64', 'linux/x86_64', 'x86_64', 'LINUX/AMD64']) {
    const r = ok(tsbuild(['build', '--progress=plain', '--platform', spelling, '-t', 'native:1', ctx], { root }));
    assert.equal(steps(r.stderr).ran, [], spelling);
    assert.is(inspect(root, 'native:1').ManifestDigest, want, spelling);
  }
});

test('bad --platform values and a base for another platform: a clear error, never a stack trace', () => {
  const root = storeWithBase(temp('store-bad'));
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN true\n` });
  dirs.push(ctx);
  const cases = [
    { platform: 'linux/sparc9', code: 2, stderr: /--platform linux\/sparc9: unknown architecture "sparc9"/ },
    { platform: 'windows/amd64', code: 2, stderr: /--platform windows\/amd64: only linux images are built/ },
    { platform: 'linux//amd64', code: 2, stderr: /is not OS\/ARCH\[\/VARIANT\]/ },
    { platform: 'linux/amd64,linux/arm64 -o x', code: 2, stderr: /--output cannot be used with several platforms/ },
    {
      platform: 'linux/arm64',
      code: 1,
      stderr: /base image "tsbuild\/busybox:1" is for linux\/amd64, not linux\/arm64\/v8 \(--platform\)/,
    },
  ];
  for (const c of cases) {
    const r = tsbuild(['build', '--platform', ...c.platform.split(' '), ctx], { root });
    assert.is(r.code, c.code, `${c.platform}\n${r.stderr}`);
    assert.match(r.stderr, c.stderr, c.platform);
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('--platform linux/arm64: RUN steps run emulated (uname -m is aarch64); config and `tsbuild run` agree', () => {
  const why = noArm64Emulation();
  if (why) return skip(why);
  sh('bash', [join(repo, 'fixtures', 'busybox-arm64', 'make-rootfs.sh')]);
  const ctx = context({ Dockerfile: 'FROM scratch\nADD rootfs.tar /\nRUN uname -m > /arch\nCMD ["uname", "-m"]\n' });
  dirs.push(ctx);
  copyFileSync(join(repo, 'fixtures', 'busybox-arm64', 'rootfs.tar'), join(ctx, 'rootfs.tar'));
  const root = temp('store-arm64');
  const out = join(root, 'out');
  ok(tsbuild(['build', '-q', '--platform', 'linux/arm64', '-t', 'arm:1', '-o', out, ctx], { root }));
  assert.is(readFileSync(join(out, 'arch'), 'utf8'), 'aarch64\n');
  const config = inspect(root, 'arm:1').ImageConfig;
  assert.equal([config.os, config.architecture, config.variant], ['linux', 'arm64', 'v8']);
  const run = ok(tsbuild(['run', '--rm', 'arm:1'], { root }));
  assert.is(run.stdout.trim(), 'aarch64');
  // `arm64` alone is the same platform: every step is a hit and the image is the same.
  const again = ok(tsbuild(['build', '--progress=plain', '--platform', 'arm64', '-t', 'arm:2', ctx], { root }));
  assert.equal(steps(again.stderr).ran, []);
  assert.is(inspect(root, 'arm:2').ManifestDigest, inspect(root, 'arm:1').ManifestDigest);
});

test('--platform linux/amd64,linux/arm64: one image per platform under an index, pushed as one reference', async () => {
  const why = noArm64Emulation();
  if (why) return skip(why);
  sh('bash', [join(repo, 'fixtures', 'busybox-arm64', 'make-rootfs.sh')]);
  const ctx = context({
    Dockerfile: 'FROM scratch\nARG TARGETARCH\nADD rootfs-$TARGETARCH.tar /\nRUN uname -m > /arch\n',
  });
  dirs.push(ctx);
  copyFileSync(join(repo, 'fixtures', 'busybox', 'rootfs.tar'), join(ctx, 'rootfs-amd64.tar'));
  copyFileSync(join(repo, 'fixtures', 'busybox-arm64', 'rootfs.tar'), join(ctx, 'rootfs-arm64.tar'));
  const reg = await startRegistry();
  try {
    const ref = `${reg.host}/multi/app:1`;
    const root = temp('store-multi');
    ok(tsbuild(['build', '--platform', 'linux/amd64,linux/arm64', '-t', ref, '--push', ctx], { root }));
    const index = JSON.parse(sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]));
    assert.is(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.equal(
      index.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture),
      ['amd64', 'arm64'],
    );
    for (const [arch, uname] of [
      ['amd64', 'x86_64'],
      ['arm64', 'aarch64'],
    ]) {
      const config = JSON.parse(
        sh('skopeo', ['inspect', '--config', '--tls-verify=false', '--override-arch', arch, `docker://${ref}`]),
      );
      assert.is(config.architecture, arch);
      // Each platform's RUN ran on (or emulated) its own machine: pull it into an empty store and look.
      const other = temp('store-pull');
      ok(tsbuild(['pull', '--platform', `linux/${arch}`, ref], { root: other }));
      const out = join(other, 'out');
      ok(tsbuild(['build', '--platform', `linux/${arch}`, '-o', out, contextFrom(ref)], { root: other }));
      assert.is(readFileSync(join(out, 'arch'), 'utf8'), `${uname}\n`, arch);
    }
  } finally {
    await reg.stop();
  }
});

/** A context whose Dockerfile is just FROM ref (to export an image's files with -o). */
function contextFrom(ref: string): string {
  const ctx = context({ Dockerfile: `FROM ${ref}\n` });
  dirs.push(ctx);
  return ctx;
}

test('build --dry-run --platform linux/arm64: the keys of the arm64 build, nothing run or written', () => {
  const why = noArm64Emulation();
  if (why) return skip(why);
  sh('bash', [join(repo, 'fixtures', 'busybox-arm64', 'make-rootfs.sh')]);
  const ctx = context({ Dockerfile: 'FROM scratch\nADD rootfs.tar /\nRUN uname -m > /arch\n' });
  dirs.push(ctx);
  copyFileSync(join(repo, 'fixtures', 'busybox-arm64', 'rootfs.tar'), join(ctx, 'rootfs.tar'));
  const root = temp('store-dry');
  const dry = (platform: string) => {
    const before = storeListing(root);
    const r = ok(tsbuild(['build', '--dry-run', '--platform', platform, '-t', 'never:1', ctx], { root }));
    assert.equal(storeListing(root), before, `a dry run for ${platform} changed the store`);
    assert.match(r.stdout, /^Dry run \(nothing was run or written\):/);
    return r.stdout;
  };
  // Before any build (a store that exists, empty): both steps would run; nothing ran (no image, no tag).
  assert.is(ok(tsbuild(['images', '-q'], { root })).stdout, '');
  assert.match(dry('linux/arm64'), /RUN uname -m > \/arch {2}miss/);
  assert.is(ok(tsbuild(['images', '-q'], { root })).stdout, '');
  ok(tsbuild(['build', '-q', '--platform', 'linux/arm64', '-t', 'arm:1', ctx], { root }));
  // After the arm64 build: its every step hits for arm64, by any spelling; the amd64 build is another.
  for (const platform of ['linux/arm64', 'arm64']) {
    const out = dry(platform);
    assert.match(out, /ADD rootfs\.tar \/ {2}hit/, platform);
    assert.match(out, /RUN uname -m > \/arch {2}hit/, platform);
  }
  assert.match(dry('linux/amd64'), /RUN uname -m > \/arch {2}miss/);
  // Several platforms would be several reports: refused, naming the flag.
  const several = tsbuild(['build', '--dry-run', '--platform', 'linux/amd64,linux/arm64', ctx], { root });
  assert.is(several.code, 2, several.stderr);
  assert.match(several.stderr, /^ERROR: --dry-run reports one platform's build: give one --platform/m);
});

/** Every path in a store with its size: what a dry run must leave as it was. */
function storeListing(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path, `${rel}${e.name}/`);
      else out.push(`${rel}${e.name} ${lstatSync(path).size}`);
    }
  };
  walk(root, '');
  return out.sort();
}

test('a platform this machine cannot emulate: the build warns why, and `tsbuild run` refuses with the reason', () => {
  // riscv64: scripts/setup.sh registers only qemu-aarch64; a machine with systemd-binfmt may have them all.
  if (existsSync('/proc/sys/fs/binfmt_misc/qemu-riscv64'))
    return skip('this machine emulates riscv64 (qemu-riscv64 is registered)', { required: false });
  const root = temp('store-riscv');
  const ctx = context({ Dockerfile: 'FROM scratch\nCOPY x /x\nCMD ["/x"]\n', x: 'not an executable\n' });
  dirs.push(ctx);
  const b = ok(tsbuild(['build', '--progress=plain', '--platform', 'linux/riscv64', '-t', 'rv:1', ctx], { root }));
  assert.match(b.stderr, /--platform linux\/riscv64: RUN steps cannot run here: .*riscv64/);
  assert.is(inspect(root, 'rv:1').ImageConfig.architecture, 'riscv64');
  const r = tsbuild(['run', '--rm', 'rv:1'], { root });
  assert.is(r.code === 0, false, r.stderr);
  assert.match(r.stderr, /image 'rv:1' is for linux\/riscv64: .*riscv64/);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
});

test.run();
