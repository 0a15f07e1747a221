// The `docker buildx build` flags CI wrappers pass, through the CLI: --label, --add-host, --ulimit,
// --shm-size, --metadata-file (without a registry; see buildx-registry.test.ts for the rest), and every
// buildx flag tsbuild does not implement refused by name with exit 2, never a usage dump.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, ok, repo, storeWithBase, tsbuild, tempDirs } from './helpers/cli.js';
import { inspect } from './helpers/image.js';
import { steps } from './helpers/progress.js';

const { temp, dirs } = tempDirs();
let root: string;

test.before(() => {
  root = storeWithBase(temp('store'));
});
test.after(() => cleanup(...dirs));

// buildx's build flags (and the docker build flags it keeps, hidden) that tsbuild does not implement.
const refused: [string[], string][] = [
  [['--attest', 'type=sbom'], '--attest'],
  [['--provenance', 'mode=max'], '--provenance'],
  [['--provenance=false'], '--provenance'],
  [['--sbom', 'true'], '--sbom'],
  [['--builder', 'b'], '--builder'],
  [['--call', 'outline'], '--call'],
  [['--cgroup-parent', '/x'], '--cgroup-parent'],
  [['--detach'], '--detach'],
  [['--memory', '1g'], '--memory'],
  [['-m', '1g'], '-m (--memory)'],
  [['--memory-swap', '1g'], '--memory-swap'],
  [['-c', '512'], '-c (--cpu-shares)'],
  [['--cpu-shares', '512'], '--cpu-shares'],
  [['--cpu-period', '100000'], '--cpu-period'],
  [['--cpu-quota', '50000'], '--cpu-quota'],
  [['--cpuset-cpus', '0'], '--cpuset-cpus'],
  [['--cpuset-mems', '0'], '--cpuset-mems'],
  [['--security-opt', 'seccomp=unconfined'], '--security-opt'],
  [['--isolation', 'default'], '--isolation'],
  [['--squash'], '--squash'],
];

test('every buildx flag tsbuild does not implement: exit 2, the flag named as not supported, no usage', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\n` });
  dirs.push(ctx);
  for (const [args, shown] of refused) {
    const r = tsbuild(['build', ...args, ctx], { root });
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.is(lines.length, 1, `${args.join(' ')}: one line, no usage dump:\n${r.stderr}`);
    assert.ok(lines[0].startsWith(`ERROR: ${shown}: not supported by tsbuild (`), `${args.join(' ')}: ${r.stderr}`);
  }
  // The same through bare `tsbuild [OPTIONS] PATH`, and listed by --help.
  const bare = tsbuild(['--squash', ctx], { root });
  assert.is(bare.code, 2, bare.stderr);
  assert.match(bare.stderr, /^ERROR: --squash: not supported by tsbuild/);
  const help = ok(tsbuild(['build', '--help'])).stdout;
  const section = help.slice(help.indexOf('Not supported'));
  for (const [, shown] of refused) assert.match(section, shown.replace(/^-\w \(/, '').replace(/\)$/, ''));
});

test('--rm, --force-rm, --compress: accepted (buildx ignores them too) and the build is the same image', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nCOPY a /a\n`, a: 'a' });
  dirs.push(ctx);
  const plain = ok(tsbuild(['build', '-q', ctx], { root })).stdout.trim();
  const flagged = ok(tsbuild(['build', '-q', '--rm', '--force-rm', '--compress', ctx], { root })).stdout.trim();
  assert.is(flagged, plain);
});

test('--label: over the Dockerfile LABELs (as BuildKit), K alone is an empty value; a bad one exits 2', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nLABEL a=dockerfile b=kept\n` });
  dirs.push(ctx);
  ok(tsbuild(['build', '-q', '-t', 'labels:1', '--label', 'a=flag', '--label', 'c=3', '--label', 'd', ctx], { root }));
  assert.equal(inspect(root, 'labels:1').Config.Labels, { a: 'flag', b: 'kept', c: '3', d: '' });
  const bad = tsbuild(['build', '--label', '=x', ctx], { root });
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /^ERROR: --label "=x": missing name$/m);
});

/** Builds ctx with args, the image's /out exported to a directory; returns that directory. */
function runOut(ctx: string, args: string[]): { out: string; stderr: string } {
  const out = temp('out');
  const r = ok(tsbuild(['build', '--progress=plain', ...args, '-o', `type=local,dest=${out}`, ctx], { root }));
  return { out, stderr: r.stderr };
}

const probe = context({
  Dockerfile:
    `FROM ${Base}\n` +
    'RUN mkdir /out && cat /etc/hosts > /out/hosts && ulimit -Sn > /out/nofile && ulimit -Hn >> /out/nofile && ' +
    "df -k /dev/shm | awk 'NR==2 {print $2}' > /out/shm\n",
});
dirs.push(probe);
const read = (out: string, f: string) => readFileSync(join(out, 'out', f), 'utf8');

test('--add-host HOST:IP (repeatable): appended to /etc/hosts of RUN steps, as BuildKit does', () => {
  const { out } = runOut(probe, ['--add-host', 'db.internal:10.1.2.3', '--add-host', 'v6host=fd00::1']);
  const lines = read(out, 'hosts').trim().split('\n');
  assert.equal(lines.slice(-2), ['10.1.2.3\tdb.internal', 'fd00::1\tv6host']);
  assert.ok(lines[0].startsWith('127.0.0.1\tlocalhost'), lines.join('\n'));
  // host-gateway: an address of this host, which the step can reach.
  const gw = runOut(probe, ['--add-host', 'host.docker.internal:host-gateway']).out;
  const entry = read(gw, 'hosts').trim().split('\n').at(-1)!;
  assert.match(entry, /^\d+\.\d+\.\d+\.\d+\thost\.docker\.internal$/);
  assert.not.match(entry, /^127\./);
  for (const bad of ['nohost', 'h:not-an-ip', ':1.2.3.4', 'bad host:1.2.3.4']) {
    const r = tsbuild(['build', '--add-host', bad, probe], { root });
    assert.is(r.code, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, `ERROR: --add-host "${bad}"`);
  }
});

test('--ulimit TYPE=SOFT[:HARD] and --shm-size: applied to RUN steps; defaults otherwise', () => {
  const { out } = runOut(probe, ['--ulimit', 'nofile=1234:5678', '--shm-size', '128m']);
  assert.is(read(out, 'nofile'), '1234\n5678\n');
  assert.is(read(out, 'shm'), `${128 * 1024}\n`);
  const soft = runOut(probe, ['--ulimit', 'nofile=2048']).out;
  assert.is(read(soft, 'nofile'), '2048\n2048\n');
  const plain = runOut(probe, []).out;
  assert.is(read(plain, 'shm'), `${64 * 1024}\n`, 'docker’s default /dev/shm is 64m');
  for (const [flag, bad, why] of [
    ['--ulimit', 'nofile', 'expected TYPE=SOFT'],
    ['--ulimit', 'frob=1', 'unknown type "frob"'],
    ['--ulimit', 'nofile=10:5', 'soft limit must not be above the hard limit'],
    ['--shm-size', 'lots', 'expected a size'],
    ['--shm-size', '0', 'must be more than 0'],
  ]) {
    const r = tsbuild(['build', flag, bad, probe], { root });
    assert.is(r.code, 2, `${flag} ${bad}: ${r.stderr}`);
    assert.match(r.stderr, why);
  }
});

test('--add-host, --ulimit, --shm-size are part of the RUN step’s cache key (as in BuildKit’s exec op)', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo step > /f\n` });
  dirs.push(ctx);
  const run = (args: string[]) => steps(ok(tsbuild(['build', '--progress=plain', ...args, ctx], { root })).stderr);
  run([]);
  assert.equal(run([]).cached, ['RUN echo step > /f']);
  for (const args of [
    ['--add-host', 'a:1.1.1.1'],
    ['--ulimit', 'nofile=100'],
    ['--shm-size', '1g'],
  ]) {
    assert.equal(run(args).ran, ['RUN echo step > /f'], `${args.join(' ')} misses`);
    assert.equal(run(args).cached, ['RUN echo step > /f'], `${args.join(' ')} then hits`);
  }
});

test('--metadata-file: buildx’s keys, the digests of the image in the store', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nCOPY a /a\n`, a: 'meta' });
  dirs.push(ctx);
  const file = join(temp('meta'), 'metadata.json');
  ok(tsbuild(['build', '-q', '-t', 'meta:1', '-t', 'example.com/x/meta:2', '--metadata-file', file, ctx], { root }));
  const meta = JSON.parse(readFileSync(file, 'utf8'));
  const img = inspect(root, 'meta:1');
  assert.is(meta['containerimage.digest'], img.ManifestDigest);
  assert.is(meta['containerimage.config.digest'], img.Id);
  assert.is(meta['containerimage.descriptor'].digest, img.ManifestDigest);
  assert.is(meta['containerimage.descriptor'].mediaType, 'application/vnd.oci.image.manifest.v1+json');
  const manifestFile = join(root, 'blobs', 'sha256', img.ManifestDigest.slice('sha256:'.length));
  assert.is(meta['containerimage.descriptor'].size, statSync(manifestFile).size);
  assert.is(meta['image.name'], 'docker.io/library/meta:1,example.com/x/meta:2');
  assert.match(meta['buildx.build.ref'], /^tsbuild\/local\/[a-z0-9]{25}$/);
  assert.not.ok(
    Object.keys(meta).some((k) => k.includes('provenance')),
    'no provenance keys: none is made',
  );
  const bad = tsbuild(['build', '--metadata-file', join(temp('meta'), 'no', 'such', 'dir', 'm.json'), ctx], { root });
  assert.is(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /^ERROR: --metadata-file .*m\.json: /m);
});

test('--build-context NAME=docker-image://REF: FROM NAME is that image', () => {
  const ctx = context({ Dockerfile: 'FROM base\nRUN echo ok > /ok\n' });
  dirs.push(ctx);
  ok(tsbuild(['build', '-q', '-t', 'named-image:1', '--build-context', `base=docker-image://${Base}`, ctx], { root }));
  const base = inspect(root, Base).Manifest.layers.map((l: { digest: string }) => l.digest);
  const built = inspect(root, 'named-image:1').Manifest.layers.map((l: { digest: string }) => l.digest);
  assert.equal(built.slice(0, base.length), base);
  assert.is(built.length, base.length + 1);
});

test('--build-context NAME=oci-layout://PATH[:TAG|@DIGEST]: into an empty store, each blob verified', () => {
  const lay = join(temp('layout'), 'oci');
  ok(
    tsbuild(
      [
        'build',
        '-q',
        '-t',
        'example.com/base:v2',
        '-o',
        `type=oci,dest=${lay},tar=false`,
        join(repo, 'fixtures', 'busybox'),
      ],
      { root },
    ),
  );
  const digest = JSON.parse(readFileSync(join(lay, 'index.json'), 'utf8')).manifests[0].digest as string;
  const ctx = context({ Dockerfile: 'FROM base\nRUN echo from-layout > /l\nCOPY --from=base /bin/busybox /copied\n' });
  dirs.push(ctx);
  for (const spec of [`${lay}:v2`, lay, `${lay}@${digest}`]) {
    const empty = temp('store-empty');
    const out = temp('out');
    ok(
      tsbuild(['build', '--build-context', `base=oci-layout://${spec}`, '-o', `type=local,dest=${out}`, ctx], {
        root: empty,
      }),
    );
    assert.is(readFileSync(join(out, 'l'), 'utf8'), 'from-layout\n', spec);
    assert.ok(statSync(join(out, 'copied')).size > 100_000, spec);
  }
  const missing = tsbuild(['build', '--build-context', `base=oci-layout://${lay}:nope`, ctx], { root: temp('s') });
  assert.is(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, `--build-context base=oci-layout://${lay}: no image tagged "nope"`);
  // A layer blob that does not match its digest: refused, and the store never holds it.
  const bad = join(temp('layout'), 'oci');
  cpSync(lay, bad, { recursive: true });
  const blobs = join(bad, 'blobs', 'sha256');
  const biggest = readdirSync(blobs).sort((a, b) => statSync(join(blobs, b)).size - statSync(join(blobs, a)).size)[0];
  const bytes = readFileSync(join(blobs, biggest));
  bytes[bytes.length - 100] ^= 0xff;
  writeFileSync(join(blobs, biggest), bytes);
  const store = temp('store-corrupt');
  const corrupt = tsbuild(['build', '--build-context', `base=oci-layout://${bad}`, ctx], { root: store });
  assert.is(corrupt.code, 2, corrupt.stderr);
  assert.match(corrupt.stderr, `blob sha256:${biggest}`);
  assert.not.ok(readdirSync(join(store, 'blobs', 'sha256')).includes(biggest));
});

test('--build-context oci-layout:// for another platform than the stage: refused, never an image of the wrong files', () => {
  // An amd64 layout under --platform linux/arm64 gave an image whose config said arm64 over amd64 files.
  const ctxOf = (df: string) => {
    const c = context({ Dockerfile: df });
    dirs.push(c);
    return c;
  };
  const layouts: Record<string, string> = {};
  for (const arch of ['amd64', 'arm64']) {
    layouts[arch] = join(temp('layout'), 'oci');
    const src = ctxOf(`FROM scratch\nCOPY Dockerfile /${arch}\n`);
    ok(
      tsbuild(['build', '-q', '--platform', `linux/${arch}`, '-o', `type=oci,dest=${layouts[arch]},tar=false`, src], {
        root,
      }),
    );
  }
  const cases: { arch: string; df: string; flags: string[]; want: string | null }[] = [
    { arch: 'amd64', df: 'FROM base\n', flags: ['--platform', 'linux/arm64'], want: 'linux/arm64 (--platform)' },
    { arch: 'amd64', df: 'FROM --platform=linux/arm64 base\n', flags: [], want: 'linux/arm64 (FROM --platform)' },
    { arch: 'arm64', df: 'FROM --platform=linux/arm64 base\n', flags: [], want: null },
    { arch: 'arm64', df: 'FROM base\n', flags: ['--platform', 'linux/arm64'], want: null },
  ];
  for (const c of cases) {
    const what = `${c.arch} layout, ${c.df.trim()} ${c.flags.join(' ')}`;
    const spec = `base=oci-layout://${layouts[c.arch]}`;
    const out = temp('out');
    const r = tsbuild(
      ['build', '-q', ...c.flags, '--build-context', spec, '-o', `type=local,dest=${out}`, ctxOf(c.df)],
      {
        root: temp('store-layout-platform'),
      },
    );
    if (c.want === null) {
      assert.is(r.code, 0, `${what}: ${r.stderr}`);
      assert.ok(statSync(join(out, c.arch)).isFile(), what);
      continue;
    }
    assert.is(r.code, 1, `${what}: ${r.stderr}`);
    const [platform, flag] = c.want.split(' ');
    assert.ok(
      r.stderr.includes(`--build-context ${spec}: the image is for linux/amd64, not ${platform}/v8 ${flag}`),
      `${what}: ${r.stderr}`,
    );
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('--build-context NAME=DIR: FROM NAME, COPY --from=NAME and RUN --mount=from=NAME read the directory', () => {
  const extra = context({
    'sub/f': 'hello from the named context\n',
    'secret.txt': 'not for the image',
    '.dockerignore': 'secret.txt\n',
    link: { symlink: '/etc/hostname' },
  });
  dirs.push(extra);
  const ctx = context({
    Dockerfile:
      'FROM extra AS files\n' +
      `FROM ${Base}\n` +
      'COPY --from=extra /sub/f /copied\n' +
      'COPY --from=files /sub /files\n' +
      'RUN --mount=from=extra,target=/m ls -A /m > /listing && readlink /m/link > /link-target\n',
  });
  dirs.push(ctx);
  const out = temp('out');
  ok(tsbuild(['build', '--build-context', `extra=${extra}`, '-o', `type=local,dest=${out}`, ctx], { root }));
  assert.is(readFileSync(join(out, 'copied'), 'utf8'), 'hello from the named context\n');
  assert.is(readFileSync(join(out, 'files', 'f'), 'utf8'), 'hello from the named context\n');
  // .dockerignore applies, and a symlink stays a link (never the host file it names).
  assert.is(readFileSync(join(out, 'listing'), 'utf8'), '.dockerignore\nlink\nsub\n');
  assert.is(readFileSync(join(out, 'link-target'), 'utf8'), '/etc/hostname\n');
  for (const [value, why] of [
    ['extra=/nonexistent-tsbuild-dir', 'is not a directory'],
    ['extra=https://example.com/ctx.git', 'remote contexts (URLs, git) are not supported'],
    ['extra', 'expected NAME=VALUE'],
    ['x=docker-image://no space', '--build-context x=docker-image://no space: '],
  ]) {
    const r = tsbuild(['build', '--build-context', value, ctx], { root });
    assert.is(r.code, 2, `${value}: ${r.stderr}`);
    assert.match(r.stderr, why);
  }
});

test('--build-context oci-layout://: index.json, a manifest or a layer that is a device or a link: refused', () => {
  const lay = join(temp('layout'), 'oci');
  ok(tsbuild(['build', '-q', '-o', `type=oci,dest=${lay},tar=false`, join(repo, 'fixtures', 'busybox')], { root }));
  const index = JSON.parse(readFileSync(join(lay, 'index.json'), 'utf8'));
  const manifestHex = (index.manifests[0].digest as string).slice(7);
  const manifest = JSON.parse(readFileSync(join(lay, 'blobs', 'sha256', manifestHex), 'utf8'));
  const layerHex = (manifest.layers[0].digest as string).slice(7);
  const ctx = context({ Dockerfile: 'FROM base\n' });
  dirs.push(ctx);
  // Each would be read without end (or read a host file): /dev/zero in place of index.json, of the
  // manifest, of the layer; and a link to a regular host file in place of the layer.
  for (const [member, target] of [
    ['index.json', '/dev/zero'],
    [`blobs/sha256/${manifestHex}`, '/dev/zero'],
    [`blobs/sha256/${layerHex}`, '/dev/zero'],
    [`blobs/sha256/${layerHex}`, '/etc/hostname'],
  ] as const) {
    const bad = join(temp('layout'), 'oci');
    cpSync(lay, bad, { recursive: true });
    rmSync(join(bad, member));
    symlinkSync(target, join(bad, member));
    const r = tsbuild(['build', '--build-context', `base=oci-layout://${bad}`, ctx], { root: temp('store-hostile') });
    assert.is(r.code, 2, `${member} -> ${target}: ${r.stderr}`);
    assert.match(r.stderr, /is not a regular file/, `${member} -> ${target}: ${r.stderr}`);
  }
});

test.run();
