// Build outputs and the flags around them, through the CLI: OCI layout (skopeo reads it),
// OCI archive, docker archive, local files, --iidfile, -f -, --target.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Base, cleanup, command, context, ok, storeWithBase, tempDir, tsbuild, tsbuildAsync } from './helpers/cli.js';
import { skip, startDockerd, type Dockerd } from '@tsbuild/testkit';
import { inspect, layoutManifest, sh } from './helpers/image.js';

const root = storeWithBase();
const ctx = context({
  Dockerfile:
    `FROM ${Base} AS build\nRUN echo artifact > /artifact\nFROM ${Base}\n` +
    `COPY --from=build /artifact /app/artifact\nCMD ["cat", "/app/artifact"]\n`,
});
const out = tempDir('out');

const cases: { name: string; output: string; check: (dest: string) => void }[] = [
  {
    name: 'type=oci writes a layout skopeo inspects, named by tag',
    output: 'type=oci,dest=DEST,tar=false',
    check: (dest) => {
      const index = JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8'));
      assert.is(index.manifests[0].annotations['org.opencontainers.image.ref.name'], '1');
      const info = JSON.parse(sh('skopeo', ['inspect', `oci:${dest}:1`]));
      assert.equal(info.Layers.length, inspect(root, 'out:1').Manifest.layers.length);
    },
  },
  {
    name: 'type=oci-archive writes a tar skopeo reads',
    output: 'type=oci-archive,dest=DEST',
    check: (dest) => {
      const info = JSON.parse(sh('skopeo', ['inspect', `oci-archive:${dest}:1`]));
      assert.ok(info.Digest.startsWith('sha256:'));
    },
  },
  {
    name: 'type=docker writes a docker-load tar that is also an OCI layout',
    output: 'type=docker,dest=DEST',
    check: (dest) => {
      const names = sh('tar', ['-tf', dest]).split('\n');
      for (const n of ['manifest.json', 'index.json', 'oci-layout']) assert.ok(names.includes(n), n);
      const x = tempDir('dockertar');
      sh('tar', ['-xf', dest, '-C', x]);
      const manifest = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8'));
      assert.equal(
        manifest[0].RepoTags,
        ['docker.io/library/out:1'].map((t) => t.replace('docker.io/library/', '')),
      );
      cleanup(x);
    },
  },
  {
    name: 'type=local writes the root filesystem as plain files',
    output: 'type=local,dest=DEST',
    check: (dest) => {
      assert.is(readFileSync(join(dest, 'app', 'artifact'), 'utf8'), 'artifact\n');
      assert.ok(existsSync(join(dest, 'bin', 'busybox')));
    },
  },
];

for (const c of cases) {
  test(c.name, () => {
    const dest = join(out, c.name.replace(/\W+/g, '-'));
    ok(tsbuild(['build', '-t', 'out:1', '-o', c.output.replace('DEST', dest), ctx], { root }));
    c.check(dest);
  });
}

test('--iidfile holds the image id (config digest), as docker writes it', () => {
  const file = join(out, 'iid');
  ok(tsbuild(['build', '--iidfile', file, '-t', 'out:1', ctx], { root }));
  assert.is(readFileSync(file, 'utf8'), inspect(root, 'out:1').Id);
});

test('-f - reads the Dockerfile from stdin; --target picks a stage', () => {
  const r = ok(
    tsbuild(['build', '-q', '-f', '-', '--target', 'one', '-t', 'stdin:1', ctx], {
      root,
      input: `FROM ${Base} AS one\nRUN echo one > /one\nFROM ${Base}\nRUN exit 9\n`,
    }),
  );
  assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
  const dest = join(out, 'stdin-local');
  ok(
    tsbuild(['build', '-f', '-', '--target', 'one', '-o', `type=local,dest=${dest}`, ctx], {
      root,
      input: `FROM ${Base} AS one\nRUN echo one > /one\nFROM ${Base}\nRUN exit 9\n`,
    }),
  );
  assert.is(readFileSync(join(dest, 'one'), 'utf8'), 'one\n');
});

test('--compression zstd|none: the output has new layers so (the store keeps them plain), and they unpack', () => {
  for (const [compression, suffix] of [
    ['zstd', '+zstd'],
    ['none', '.tar'],
  ] as const) {
    const c = context({ Dockerfile: `FROM ${Base}\nRUN echo ${compression} > /made-with\n` });
    const dest = join(out, `compression-${compression}`);
    ok(
      tsbuild(
        [
          'build',
          '--compression',
          compression,
          '-t',
          `comp:${compression}`,
          '-o',
          `type=oci,dest=${dest},tar=false`,
          c,
        ],
        {
          root,
        },
      ),
    );
    const stored = inspect(root, `comp:${compression}`).Manifest.layers.at(-1);
    assert.is(stored.mediaType, 'application/vnd.oci.image.layer.v1.tar');
    const last = layoutManifest(dest).layers.at(-1)!;
    assert.ok(last.mediaType.endsWith(suffix), last.mediaType);
    const blob = join(dest, 'blobs', 'sha256', last.digest.slice(7));
    if (compression === 'zstd') {
      // Debian's umoci predates zstd layers: check the stream with zstd, the tree with our export.
      sh('zstd', ['-t', '-q', blob]);
      const files = join(out, 'zstd-local');
      ok(tsbuild(['build', '--compression', 'zstd', '-o', `type=local,dest=${files}`, c], { root }));
      assert.is(readFileSync(join(files, 'made-with'), 'utf8'), 'zstd\n');
    } else {
      const bundle = join(tempDir('umoci'), 'bundle');
      sh('umoci', ['unpack', '--image', `${dest}:${compression}`, bundle]);
      assert.is(readFileSync(join(bundle, 'rootfs', 'made-with'), 'utf8'), 'none\n');
      cleanup(bundle);
    }
    cleanup(c);
  }
  assert.is(tsbuild(['build', '--compression', 'lz4', ctx], { root }).code, 2);
});

test('bad --output specs are usage errors', () => {
  for (const spec of ['type=zip,dest=x', 'dest=x', 'type=local', 'type=oci,tar=false', 'type=docker,tar=0,dest=-']) {
    const r = tsbuild(['build', '-o', spec, ctx], { root });
    assert.is(r.code, 2, spec);
    assert.match(r.stderr, /--output/);
  }
});

// -o type=image / type=registry / type=cacheonly: buildx's image exporters (docs/cli.md). The image is named
// in the store (as -t names it); a push goes to a registry (test/buildx-registry.test.ts).
test('-o type=image,name=N,push=false names the image in the store only; --metadata-file says the name', () => {
  const meta = join(tempDir('meta'), 'm.json');
  ok(tsbuild(['build', '-q', '-o', 'type=image,name=img-only:1,push=false', '--metadata-file', meta, ctx], { root }));
  const id = inspect(root, 'img-only:1').Id;
  assert.is(JSON.parse(readFileSync(meta, 'utf8'))['image.name'], 'docker.io/library/img-only:1');
  // Several names: one CSV field, quoted (buildx's encoding/csv); -t, when given, is what names it instead.
  ok(tsbuild(['build', '-q', '-o', 'type=image,"name=img-a:1,img-b:1"', ctx], { root }));
  for (const n of ['img-a:1', 'img-b:1']) assert.is(inspect(root, n).Id, id, n);
  ok(tsbuild(['build', '-q', '-t', 'img-t:1', '-o', 'type=image,name=img-not:1', ctx], { root }));
  assert.is(inspect(root, 'img-t:1').Id, id);
  assert.is(tsbuild(['inspect', 'img-not:1'], { root }).code, 1, 'name= is replaced by -t');
});

test('-o type=cacheonly builds and names nothing, even with -t', () => {
  const r = ok(tsbuild(['build', '-q', '-t', 'cacheonly:1', '-o', 'type=cacheonly', ctx], { root }));
  assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
  assert.is(tsbuild(['inspect', 'cacheonly:1'], { root }).code, 1, 'not tagged');
});

// Bad -o type=image/registry/cacheonly values: exit 2 before the build, naming --output and the key.
const badImageOutputs: { args: string[]; stderr: RegExp }[] = [
  { args: ['-o', 'type=image,name=x:1,push=maybe'], stderr: /--output .*: push: "maybe" is not a boolean/ },
  { args: ['-o', 'type=image,name=x:1,registry.insecure=2'], stderr: /registry\.insecure: "2" is not a boolean/ },
  { args: ['-o', 'type=image,push=true'], stderr: /--output .*: tag is needed when pushing to registry/ },
  { args: ['-o', 'type=registry'], stderr: /--output type=registry: tag is needed when pushing to registry/ },
  { args: ['--push', '-o', 'type=image'], stderr: /tag is needed when pushing to registry/ },
  { args: ['-o', 'type=image,name=UPPER:1'], stderr: /--output .*: name "UPPER:1": / },
  { args: ['-o', 'type=image,"name=x:1,"'], stderr: /--output .*: name "": / },
  { args: ['-o', 'type=registry,name=x:1,unpack=maybe'], stderr: /unpack: "maybe" is not a boolean/ },
  { args: ['-o', 'type=image,name=x:1,compression=brotli'], stderr: /compression: "brotli" is not one of gzip/ },
  {
    args: ['-o', 'type=image,name=x:1,force-compression=maybe'],
    stderr: /force-compression: "maybe" is not a boolean/,
  },
  {
    args: ['-o', 'type=image,name=x:1,compression-level=10'],
    stderr: /compression-level: 10 is out of range for gzip/,
  },
  { args: ['-o', 'type=image,name=x:1,oci-mediatypes=false'], stderr: /oci-mediatypes=false: not supported/ },
  { args: ['-o', 'type=image,name=x:1,frob=1'], stderr: /--output .*: unknown key "frob"/ },
  { args: ['-o', 'type=image,name=x:1,dest=/tmp/x'], stderr: /--output .*: unknown key "dest"/ },
  { args: ['-o', 'type=cacheonly,name=x:1'], stderr: /--output .*: unknown key "name"/ },
  {
    args: ['-o', 'type=image,"name=x:1'],
    stderr: /--output .*: parse error on line 1, column \d+: extraneous or missing " in quoted-field/,
  },
];
for (const c of badImageOutputs)
  test(`bad image output: ${c.args.join(' ')}: exit 2`, () => {
    const r = tsbuild(['build', ...c.args, ctx], { root });
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, c.stderr);
    assert.not.match(r.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
    assert.is(tsbuild(['inspect', 'x:1'], { root }).code, 1, 'nothing named');
  });

// buildx's -o rules (docs/cli.md). Archives are checked by tools that are not tsbuild: skopeo, GNU tar,
// a Docker daemon's `docker load`. A `sh` line runs the real CLI as CI scripts do (`$TSB`), with
// shell redirection where the archive goes to stdout.
const sh2 = (script: string, env: Record<string, string> = {}) =>
  spawnSync('bash', ['-c', script], {
    env: { ...process.env, CI: 'true', TSBUILD_ROOT: root, TSB: command, CTX: ctx, ...env },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
const okSh = (script: string) => {
  const r = sh2(script);
  if (r.status !== 0) throw new Error(`${script}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r;
};
/** `find`'s view of a tree: path, type, mode, owner, size, link target: what both forms must agree on. */
const treeOf = (dir: string) =>
  sh('find', [dir, '-mindepth', '1', '-printf', '%P %y %m %U:%G %s %l\n'])
    .split('\n')
    .filter((l) => l && !/ d /.test(l.replace(/^\S+/, '')))
    .map((l) => (/ [dl] /.test(l) ? l.replace(/ \d+ (\S*)$/, ' - $1') : l))
    .sort();
/** A tar's members as GNU tar lists them, without "./" and a directory's trailing "/". */
const membersOf = (file: string) =>
  sh('tar', ['-tf', file])
    .split('\n')
    .map((n) => n.replace(/^\.\//, '').replace(/\/$/, ''))
    .filter((n) => n && n !== '.')
    .sort();
const localTree = join(out, 'rootfs-local');
let daemon: Dockerd | string | undefined;

const streams: { name: string; run: string; check: (file: string) => void | Promise<void> }[] = [
  {
    name: '-o type=oci,dest=F: an OCI archive file (skopeo oci-archive:)',
    run: '$TSB build -t out:1 -o type=oci,dest=$F $CTX',
    check: (f) => assert.ok(JSON.parse(sh('skopeo', ['inspect', `oci-archive:${f}:1`])).Digest.startsWith('sha256:')),
  },
  {
    name: '-o type=oci,dest=- > F: the same archive on stdout',
    run: '$TSB build -t out:1 -o type=oci,dest=- $CTX > $F',
    check: (f) => assert.is(JSON.parse(sh('skopeo', ['inspect', `oci-archive:${f}:1`])).Layers.length, 2),
  },
  {
    name: '-o type=oci (no dest) | cat > F: stdout, through a pipe',
    run: 'set -o pipefail; $TSB build -q -t out:1 -o type=oci $CTX | cat > $F',
    check: (f) => assert.is(JSON.parse(sh('skopeo', ['inspect', `oci-archive:${f}:1`])).Layers.length, 2),
  },
  {
    name: '-o type=oci,dest=F,tar=false: a layout directory (skopeo oci:)',
    run: '$TSB build -t out:1 -o type=oci,dest=$F,tar=false $CTX',
    check: (f) => assert.is(JSON.parse(sh('skopeo', ['inspect', `oci:${f}:1`])).Layers.length, 2),
  },
  {
    name: '-o type=oci,dest=F,tar=junk: what Go ParseBool does not read is true (an archive)',
    run: '$TSB build -t out:1 -o type=oci,dest=$F,tar=junk $CTX',
    check: (f) => assert.is(JSON.parse(sh('skopeo', ['inspect', `oci-archive:${f}:1`])).Layers.length, 2),
  },
  {
    name: '-o type=docker,dest=F,tar=0: a layout directory (skopeo oci:)',
    run: '$TSB build -t out:1 -o type=docker,dest=$F,tar=0 $CTX',
    check: (f) => assert.is(JSON.parse(sh('skopeo', ['inspect', `oci:${f}:1`])).Layers.length, 2),
  },
  {
    name: '-o type=tar,dest=F: the root filesystem type=local writes, as one tar',
    run: '$TSB build -o type=tar,dest=$F $CTX',
    check: (f) => sameTree(f),
  },
  {
    name: '-o - > F: the same tar on stdout, with --progress=plain and -q writing nothing there',
    run: '$TSB build -q --progress=plain -o - $CTX > $F',
    check: (f) => sameTree(f),
  },
  {
    name: '-o type=tar > F (dest defaults to stdout)',
    run: '$TSB build --progress=plain -o type=tar $CTX > $F',
    check: (f) => sameTree(f),
  },
  {
    name: '-o type=docker,dest=- > F: an archive a Docker daemon loads',
    run: '$TSB build -t out:1 -o type=docker,dest=- $CTX > $F',
    check: (f) => dockerLoads(f),
  },
  {
    name: '-o type=docker,dest=F: an archive a Docker daemon loads',
    run: '$TSB build -t out:1 -o type=docker,dest=$F $CTX',
    check: (f) => dockerLoads(f),
  },
];

/** The tar holds exactly the tree type=local writes: members (GNU tar's list), then contents and modes. */
function sameTree(file: string) {
  if (!existsSync(localTree)) ok(tsbuild(['build', '-o', `type=local,dest=${localTree}`, ctx], { root }));
  assert.equal(
    membersOf(file),
    sh('find', [localTree, '-mindepth', '1', '-printf', '%P\n']).split('\n').filter(Boolean).sort(),
  );
  const x = tempDir('tar-x');
  sh('tar', ['-xpf', file, '-C', x, '--numeric-owner']);
  assert.equal(treeOf(x), treeOf(localTree));
  sh('diff', ['-r', '--no-dereference', x, localTree]);
  assert.is(readFileSync(join(x, 'app', 'artifact'), 'utf8'), 'artifact\n');
  cleanup(x);
}

async function dockerLoads(file: string) {
  daemon ??= await startDockerd(join(tempDir('dockerd'), 'd'), { args: ['--storage-driver', 'vfs'] });
  if (typeof daemon === 'string') return skip(daemon);
  const loaded = daemon.docker(['load', '-i', file]);
  assert.is(loaded.code, 0, loaded.stderr);
  assert.match(loaded.stdout, /Loaded image: out:1/);
  const id = daemon.docker(['image', 'inspect', '--format', '{{.Id}}', 'out:1']);
  assert.is(id.stdout.trim(), inspect(root, 'out:1').Id);
  daemon.docker(['rmi', 'out:1']);
}

for (const c of streams) {
  test(`output: ${c.name}`, async () => {
    const f = join(out, `s-${c.name.replace(/\W+/g, '-').slice(0, 60)}`);
    const r = okSh(c.run.replaceAll('$F', f));
    // An archive on stdout shares it with nothing: -q's image ID is not printed, progress is on stderr.
    if (!c.run.includes('>')) assert.is(r.stdout, '');
    // ... nor after it: a tar is whole 512-byte blocks (readers stop at its end and would not see a tail).
    if (statSync(f).isFile()) assert.is(statSync(f).size % 512, 0, 'bytes after the archive on stdout');
    return c.check(f);
  });
}

const refusals: { name: string; args: string[]; tty?: boolean; error: RegExp }[] = [
  { name: 'local dest=-', args: ['-o', 'type=local,dest=-'], error: /dest cannot be stdout for local exporter/ },
  { name: 'local without dest', args: ['-o', 'type=local'], error: /dest is required for local exporter/ },
  { name: 'tar=false to stdout', args: ['-o', 'type=oci,tar=false,dest=-'], error: /dest cannot be stdout/ },
  {
    name: 'two outputs to stdout',
    args: ['-o', '-', '-o', 'type=oci,dest=-'],
    error: /multiple outputs configured to write to stdout/,
  },
  {
    name: 'a local dest that is a file',
    args: ['-o', 'type=local,dest=FILE'],
    error: /destination directory .* is a file/,
  },
  { name: '-o DIR that is a file', args: ['-o', 'FILE'], error: /destination directory .* is a file/ },
  { name: 'a tar=false dest that is a file', args: ['-o', 'type=oci,tar=false,dest=FILE'], error: /is a file/ },
  {
    name: 'a tar dest that is a directory',
    args: ['-o', 'type=tar,dest=DIR'],
    error: /destination file .* is a directory/,
  },
  { name: 'an oci dest that is a directory', args: ['-o', 'type=oci,dest=DIR'], error: /destination file .* is a dir/ },
  {
    name: 'a local dest beneath a file',
    args: ['-o', 'type=local,dest=FILE/sub'],
    error: /a directory above it is a file/,
  },
  {
    name: 'a tar dest beneath a file',
    args: ['-o', 'type=tar,dest=FILE/x.tar'],
    error: /a directory above it is a file/,
  },
  { name: 'an archive to stdout and --explain', args: ['-o', '-', '--explain'], error: /--explain-file/ },
  {
    name: 'stdout a terminal',
    args: ['-o', 'type=oci'],
    tty: true,
    error: /dest file is required for oci exporter. refusing to write to console/,
  },
  {
    name: '-o - to a terminal',
    args: ['-o', '-'],
    tty: true,
    error: /dest file is required for tar exporter. refusing to write to console/,
  },
];

for (const c of refusals) {
  test(`output refused (exit 2): ${c.name}`, () => {
    const file = join(out, 'a-file');
    const dir = join(out, 'a-dir');
    writeFileSync(file, 'keep');
    mkdirSync(dir, { recursive: true });
    const args = c.args.map((a) => a.replace('FILE', file).replace('DIR', dir));
    let code: number | null;
    let text: string;
    if (c.tty) {
      // script(1) gives the command a terminal as stdout; its exit status is the command's.
      const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
      const r = sh2(`script -qec ${q(['"$TSB"', 'build', ...args.map(q), '"$CTX"'].join(' '))} /dev/null`);
      [code, text] = [r.status, r.stdout + r.stderr];
    } else {
      const r = tsbuild(['build', ...args, ctx], { root });
      [code, text] = [r.code, r.stderr];
      assert.is(r.stdout, '');
    }
    assert.is(code, 2, text);
    assert.match(text, c.error);
    assert.match(text, /--output/);
    assert.is(readFileSync(file, 'utf8'), 'keep');
  });
}

const broken: { name: string; run: string; error: RegExp }[] = [
  {
    name: 'its reader goes away (EPIPE)',
    run: '$TSB build -t out:1 -o type=oci,dest=- $CTX 2>$E | head -c 1000 > /dev/null; exit "${PIPESTATUS[0]}"',
    error: /stdout was closed before the whole archive was written/,
  },
  {
    name: 'the disk is full (ENOSPC)',
    run: '$TSB build -o - $CTX > /dev/full 2>$E',
    error: /writing the archive to stdout: ENOSPC/,
  },
];
for (const c of broken) {
  test(`output: an export to stdout fails the build (exit 1, no stack trace) when ${c.name}`, () => {
    const e = join(out, 'stderr');
    const r = sh2(c.run.replace('$E', e));
    const text = readFileSync(e, 'utf8');
    assert.is(r.status, 1, text);
    assert.match(text, c.error);
    assert.not.match(text, /\n\s+at /);
  });
}

test('output: a file dest in no directory fails naming the file, not its temp file (exit 1)', () => {
  for (const type of ['tar', 'oci', 'docker']) {
    const dest = join(out, 'none', `x-${type}.tar`);
    const r = tsbuild(['build', '-o', `type=${type},dest=${dest}`, ctx], { root });
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^ERROR: .*${dest}: no such directory\\n$`, 'm'));
    assert.not.match(r.stderr, /\.tmp/);
  }
});

test('output: an interrupt (SIGINT) during an export to stdout exits 130; the scratch tree is removed', async () => {
  const big = context({ Dockerfile: `FROM ${Base}\nCOPY big /big\n` });
  writeFileSync(join(big, 'big'), Buffer.alloc(64 << 20, 7));
  const child = tsbuildAsync(['build', '-o', '-', big], { root });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // The archive has begun (bytes on stdout): interrupt it, and keep reading so that the writes go on.
  child.stdout.once('data', () => child.kill('SIGINT'));
  child.stdout.resume();
  const code = await new Promise<number | null>((res) => child.on('close', res));
  assert.is(code, 130, stderr);
  assert.match(stderr, /interrupted/);
  assert.equal(
    readdirSync(join(root, 'tmp')).filter((n) => n.startsWith('export-tar')),
    [],
  );
  cleanup(big);
});

test.after(async () => {
  if (typeof daemon === 'object') await daemon.stop();
});

test('independent stages run at the same time (each waits for the other to have started)', () => {
  // A handshake through a shared cache mount: each stage marks that it started, then waits for the
  // other's mark. Run one after the other, the first would wait in vain and fail the build; the
  // 120 s limit only bounds that failure. A fresh cache id, so no mark is left from an earlier run.
  const id = `par-${process.pid}-${Date.now()}`;
  const step = (me: string, other: string) =>
    `RUN --mount=type=cache,id=${id},target=/sync,sharing=shared echo start-${me} && touch /sync/${me} && ` +
    `i=0; while [ ! -e /sync/${other} ]; do i=$((i+1)); [ $i -le 1200 ] || exit 1; sleep 0.1; done; echo end-${me}`;
  const par = context({
    Dockerfile:
      `FROM ${Base} AS a\n${step('a', 'b')}\nFROM ${Base} AS b\n${step('b', 'a')}\n` +
      `FROM ${Base}\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n`,
  });
  const r = ok(tsbuild(['build', '--progress=plain', '--no-cache', par], { root }));
  // Output lines look like "#4 0.081 start-a"; the step's own title line also names the words.
  const at = (s: string) => r.stderr.search(new RegExp(`^#\\d+ \\d+\\.\\d+ ${s}$`, 'm'));
  for (const s of ['start-a', 'start-b', 'end-a', 'end-b']) assert.ok(at(s) >= 0, `${s} in:\n${r.stderr}`);
  cleanup(par);
});

test('RUN --mount=type=secret: the file is there for the step, never in the image or the key', () => {
  const secretFile = join(out, 'token');
  mkdirSync(out, { recursive: true });
  spawnSync('sh', ['-c', `printf s3cr3t > ${secretFile}`]);
  const c = context({
    Dockerfile:
      `FROM ${Base}\nRUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c > /len && ls ` +
      `/run/secrets > /listing || true\n`,
  });
  const dest = join(out, 'secret-local');
  ok(tsbuild(['build', '--secret', `id=tok,src=${secretFile}`, '-o', `type=local,dest=${dest}`, c], { root }));
  assert.is(readFileSync(join(dest, 'len'), 'utf8').trim(), '6');
  assert.not.ok(existsSync(join(dest, 'run', 'secrets', 'tok')), 'secret not in the image');
  // Another value of the secret is still a cache hit: its content is not part of the key.
  spawnSync('sh', ['-c', `printf other > ${secretFile}`]);
  const again = ok(tsbuild(['build', '--progress=plain', '--secret', `id=tok,src=${secretFile}`, c], { root }));
  assert.match(again.stderr, /CACHED/);
  // BuildKit's default is required=false (the step runs without it); required=true fails clearly.
  const strict = context({
    Dockerfile: `FROM ${Base}\nRUN --mount=type=secret,id=tok,required=true cat /run/secrets/tok\n`,
  });
  const missing = tsbuild(['build', strict], { root });
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /secret "tok" is required/);
  cleanup(c, strict);
});

test.after(() => cleanup(root, ctx, out));
test.run();
