// Build outputs and the flags around them, through the CLI: OCI layout (skopeo reads it),
// OCI archive, docker archive, local files, --iidfile, -f -, --target.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild } from './helpers/cli.js';
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
    output: 'type=oci,dest=DEST',
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
      tsbuild(['build', '--compression', compression, '-t', `comp:${compression}`, '-o', `type=oci,dest=${dest}`, c], {
        root,
      }),
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
  for (const spec of ['type=zip,dest=x', 'type=oci', 'dest=x']) {
    const r = tsbuild(['build', '-o', spec, ctx], { root });
    assert.is(r.code, 2, spec);
    assert.match(r.stderr, /--output/);
  }
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
