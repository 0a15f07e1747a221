// Registries through the CLI, against real `docker-registry` processes on 127.0.0.1 (one open,
// one with htpasswd basic auth), checked with a tool that is not ours (skopeo):
// push / build --push / pull / implicit FROM pull, a repeated push that sends no blob bytes,
// login/logout, and the build cache shared through a registry (--cache-to / --cache-from).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  Base,
  cleanup,
  context,
  ok,
  storeWithBase,
  tsbuild,
  tsbuildAsync,
  type Result,
  tempDirs,
} from './helpers/cli.js';
import { inspect, sh } from './helpers/image.js';
import { startRegistry, type TestRegistry } from '@tsbuild/testkit';
import { steps } from './helpers/progress.js';

let reg: TestRegistry;
let authReg: TestRegistry;
const { temp, dirs } = tempDirs();
/** A store with the busybox base (storeWithBase), kept for the whole suite. */
let storeA: string;
/**
 * Manifest digest of the base as pushed to `${reg.host}/base:1` (its layer compressed by the push: the
 * store keeps it uncompressed, so its own manifest is another).
 */
let baseDigest: string;
/** The manifest digest a push printed. */
const pushedDigest = (r: Result) => /digest: (sha256:[a-f0-9]{64})/.exec(r.stdout + r.stderr)?.[1] ?? '(none)';

test.before(async () => {
  [reg, authReg] = await Promise.all([startRegistry(), startRegistry({ auth: { user: 'alice', pass: 's3cret-pw' } })]);
  storeA = storeWithBase(temp('store-a'));
  ok(tsbuild(['tag', Base, `${reg.host}/base:1`], { root: storeA }));
  baseDigest = pushedDigest(ok(tsbuild(['push', `${reg.host}/base:1`], { root: storeA })));
});

test.after(async () => {
  await Promise.all([reg?.stop(), authReg?.stop()]);
  cleanup(...dirs);
});

const sha256File = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const skopeoDigest = (ref: string) =>
  JSON.parse(sh('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])).Digest as string;
const uploadedBytes = (r: Result) => Number(/uploaded \d+ blobs \((\d+) bytes\)/.exec(r.stderr)?.[1] ?? NaN);

test('push: what skopeo sees is what the push printed; a second push sends no blob bytes', () => {
  assert.is(skopeoDigest(`${reg.host}/base:1`), baseDigest);
  const pushed = JSON.parse(sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/base:1`]));
  assert.is(pushed.config.digest, inspect(storeA, `${reg.host}/base:1`).Id, 'the image id is the same');
  const again = ok(tsbuild(['push', '--progress=plain', `${reg.host}/base:1`], { root: storeA }));
  assert.is(uploadedBytes(again), 0, again.stderr);
  assert.match(again.stdout, `1: digest: ${baseDigest}`);
});

test('push of a store blob that no longer matches its digest: exit 1 naming it, and the registry never gets it', () => {
  const root = temp('store-corrupt');
  const ctx = context({ Dockerfile: 'FROM scratch\nCOPY data.txt /\n', 'data.txt': 'x'.repeat(3_000_000) });
  dirs.push(ctx);
  const ref = `${reg.host}/corrupt:1`;
  ok(tsbuild(['build', '-q', '-t', ref, ctx], { root }));
  const layer = inspect(root, ref).Manifest.layers[0].digest as string;
  const file = join(root, 'blobs', 'sha256', layer.slice(7));
  const bytes = readFileSync(file);
  bytes[bytes.length - 1] ^= 0xff;
  chmodSync(file, 0o644); // blobs are read-only
  writeFileSync(file, bytes);
  const r = tsbuild(['push', ref], { root });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, `blob ${layer} is corrupt`);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  assert.throws(() => sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]));
});

test('build --push pushes every -t tag; skopeo copies it back out', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo pushed > /pushed\n` });
  dirs.push(ctx);
  const tags = [`${reg.host}/app:1`, `${reg.host}/team/app:2`];
  const r = ok(
    tsbuild(['build', '--progress=plain', '--push', ...tags.flatMap((t) => ['-t', t]), ctx], { root: storeA }),
  );
  const digest = pushedDigest(r);
  for (const t of tags) assert.is(skopeoDigest(t), digest, t);
  const out = temp('skopeo-oci');
  sh('skopeo', ['copy', '--src-tls-verify=false', `docker://${tags[1]}`, `oci:${join(out, 'layout')}:x`]);
  assert.ok(existsSync(join(out, 'layout', 'index.json')));
  // The second tag's layers were mounted or already there: only the first push uploaded the new layer.
  assert.match(r.stderr, /#\d+ push .*team\/app:2/);
});

test('pull: an image pushed by skopeo, by tag and by digest', () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo from-skopeo > /s\n` });
  dirs.push(ctx);
  const layout = join(temp('oci'), 'layout');
  ok(tsbuild(['build', '-q', '-t', 'skopeo-src:1', '-o', `type=oci,dest=${layout},tar=false`, ctx], { root: storeA }));
  const built = inspect(storeA, 'skopeo-src:1');
  sh('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:1`, `docker://${reg.host}/skopeo:1`]);
  const remoteDigest = skopeoDigest(`${reg.host}/skopeo:1`);

  const storeB = temp('store-b');
  const cases: { ref: string; stdout: RegExp }[] = [
    { ref: `${reg.host}/skopeo:1`, stdout: /Status: Downloaded newer image for 127\.0\.0\.1:\d+\/skopeo:1/ },
    { ref: `${reg.host}/skopeo:1`, stdout: /Status: Image is up to date for/ },
    { ref: `${reg.host}/skopeo@${remoteDigest}`, stdout: new RegExp(`Digest: ${remoteDigest}`) },
  ];
  for (const c of cases) {
    const r = ok(tsbuild(['pull', c.ref], { root: storeB }));
    assert.match(r.stdout, c.stdout, c.ref);
    const img = inspect(storeB, c.ref);
    assert.is(img.ManifestDigest, remoteDigest, c.ref);
    assert.is(img.Id, built.Id, c.ref);
  }
});

// docker shows a pulled image's layers unpacked: so does tsbuild, as for the built image that was pushed
// (whose layers the store keeps uncompressed), though the pull stores them as the registry has them, gzipped.
test('images and history of a pulled image: the layers uncompressed, as the built image it was pushed from', () => {
  const store = temp('store-pulled');
  ok(tsbuild(['pull', `${reg.host}/base:1`], { root: store }));
  const layers = (root: string, ref: string) =>
    ok(tsbuild(['history', '--human=false', '--format', '{{.Size}}', ref], { root })).stdout;
  assert.is(layers(store, `${reg.host}/base:1`), layers(storeA, Base));
  const size = (root: string, ref: string) => {
    const [row] = JSON.parse(ok(tsbuild(['images', '--format', 'json', ref], { root })).stdout);
    return row.size - statSync(join(root, 'blobs', 'sha256', row.manifestDigest.slice(7))).size;
  };
  assert.is(size(store, `${reg.host}/base:1`), size(storeA, Base));
});

/**
 * An HTTP proxy to the registry that, while `hold` is set, sends a blob response larger than 2 MiB only up
 * to its first MiB and then keeps the connection open: a pull caught mid-download, deterministically.
 */
async function holdingProxy(target: TestRegistry) {
  const state = { hold: true, held: 0 };
  let heldOnce: () => void = () => {};
  const held = new Promise<void>((r) => (heldOnce = r));
  const server = http.createServer((req, res) => {
    const up = http.request(
      { host: '127.0.0.1', port: target.port, path: req.url, method: req.method, headers: req.headers },
      (ur) => {
        ur.on('error', () => res.destroy());
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        const big = Number(ur.headers['content-length']) > 2 << 20 && /\/blobs\/sha256:/.test(req.url ?? '');
        if (!(big && state.hold)) return void ur.pipe(res);
        let sent = 0;
        ur.on('data', (c: Buffer) => {
          if (sent >= 1 << 20) return;
          const part = c.subarray(0, (1 << 20) - sent);
          sent += part.length;
          res.write(part);
          if (sent >= 1 << 20) {
            ur.pause();
            state.held++;
            heldOnce();
          }
        });
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    state,
    held,
    stop: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

function cliAsync(args: string[], root: string): Promise<Result> {
  return new Promise((resolve) => {
    const c = tsbuildAsync(args, { root });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

test('a pull killed mid-download: nothing partial visible, and the next pull completes the store', async () => {
  const ctx = context({ Dockerfile: `FROM ${Base}\nRUN head -c 6291456 /dev/urandom > /big\n` });
  dirs.push(ctx);
  ok(tsbuild(['build', '-q', '--push', '-t', `${reg.host}/killed:1`, ctx], { root: storeA }));
  const proxy = await holdingProxy(reg);
  try {
    const ref = `${proxy.host}/killed:1`;
    const root = temp('store-killed');
    const child = tsbuildAsync(['pull', '-q', ref], { root });
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    await Promise.race([proxy.held, exited]);
    assert.is(proxy.state.held, 1, 'the big layer was caught mid-download');
    // The held MiB reached the pull's temp file (a file-system signal, not a delay): then it is killed.
    const tmp = join(root, 'tmp');
    // Other blobs (config, small layers) finish while we look: their temp file is renamed into the store between
    // the listing and its stat, so a file that vanished counts as 0 bytes; any other error still fails the test.
    const sizeOrZero = (path: string) => {
      try {
        return statSync(path).size;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
        throw e;
      }
    };
    const ingestBytes = () =>
      readdirSync(tmp)
        .filter((n) => n.startsWith('ingest-'))
        .reduce((a, n) => a + sizeOrZero(join(tmp, n)), 0);
    while (ingestBytes() < 1 << 20 && child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
    assert.is(child.exitCode, null, 'the pull waits for the rest of the layer');
    child.kill('SIGKILL');
    await exited;
    const blobsDir = join(root, 'blobs', 'sha256');
    const afterKill = readdirSync(blobsDir);
    for (const hex of afterKill) assert.is(sha256File(join(blobsDir, hex)), hex, `blob ${hex} is whole`);
    assert.not.ok(tsbuild(['inspect', ref], { root }).code === 0, 'no tag for a pull that did not finish');

    proxy.state.hold = false;
    const again = await cliAsync(['pull', ref], root); // the proxy lives in this process: no spawnSync
    assert.is(again.code, 0, again.stderr);
    assert.match(again.stdout, /Status: Downloaded newer image for/);
    const img = inspect(root, ref);
    const layers = (img.Manifest.layers as { digest: string }[]).map((l) => l.digest.slice(7));
    assert.ok(
      layers.some((hex) => !afterKill.includes(hex)),
      'the layer the kill interrupted was not in the store',
    );
    for (const hex of [img.ManifestDigest.slice(7), ...layers])
      assert.is(sha256File(join(blobsDir, hex)), hex, `blob ${hex} verified`);
    assert.equal(
      readdirSync(tmp).filter((n) => n.startsWith('ingest-')),
      [],
      "the killed pull's temp file is gone",
    );
  } finally {
    await proxy.stop();
  }
});

test('pull / push failures: exit 1 naming what failed, exit 2 for bad usage', () => {
  const root = temp('store-err');
  const cases: { args: string[]; code: number; stderr: RegExp }[] = [
    {
      args: ['pull', `${reg.host}/nope:1`],
      code: 1,
      stderr: /fetching manifest 127\.0\.0\.1:\d+\/nope:1: .*404 MANIFEST_UNKNOWN/,
    },
    {
      args: ['push', `${reg.host}/not-here:1`],
      code: 1,
      stderr: /does not exist locally with the tag: 127\.0\.0\.1:\d+\/not-here:1/,
    },
    { args: ['pull'], code: 2, stderr: /requires exactly 1 argument/ },
    { args: ['pull', 'Bad Ref'], code: 2, stderr: /invalid reference/ },
    { args: ['pull', '--platform', 'linux', `${reg.host}/base:1`], code: 2, stderr: /--platform linux/ },
    { args: ['push', '--bogus', 'x:1'], code: 2, stderr: /unknown flag: --bogus/ },
    { args: ['build', '--push', '.'], code: 2, stderr: /--push needs at least one -t/ },
    { args: ['build', '--cache-to', 'type=gha', '.'], code: 2, stderr: /type=gha is not supported/ },
    {
      args: ['build', '--cache-to', `type=registry,ref=${reg.host}/c:1,mode=all`, '.'],
      code: 2,
      stderr: /mode=all is not one of min, max/,
    },
  ];
  for (const c of cases) {
    const r = tsbuild(c.args, { root });
    assert.is(r.code, c.code, `${c.args.join(' ')}\n${r.stderr}`);
    assert.match(r.stderr, c.stderr, c.args.join(' '));
  }
});

test('FROM an image in a registry pulls it into an empty store (by tag and by digest)', () => {
  const cases = [`${reg.host}/base:1`, `${reg.host}/base@${baseDigest}`];
  for (const from of cases) {
    const root = temp('store-from');
    const ctx = context({ Dockerfile: `FROM ${from}\nRUN echo built-on-pulled > /p\n` });
    dirs.push(ctx);
    const r = ok(tsbuild(['build', '--progress=plain', '-t', 'onpulled:1', ctx], { root }));
    assert.match(r.stderr, `pull base image ${from}`);
    assert.is(inspect(root, from).ManifestDigest, baseDigest, from);
    assert.is(inspect(root, 'onpulled:1').Layers.length, inspect(storeA, Base).Layers.length + 1, from);
  }
});

test('cache shared through a registry: an empty store runs no step and builds the same image', () => {
  // Both stores build FROM the same registry image, so the base key (its manifest digest) matches.
  // No SOURCE_DATE_EPOCH is needed: the image config's `created` and history times come from the
  // cache records, which store B takes from store A's export, so the image digests are equal.
  const dockerfile = `FROM ${reg.host}/base:1
WORKDIR /app
COPY a.txt ./
RUN cat a.txt > /copy
ARG LAST=1
RUN echo "last $LAST" > /last && cat /copy >> /last
`;
  const ctx = context({ Dockerfile: dockerfile, 'a.txt': 'shared\n' });
  dirs.push(ctx);
  const cacheRef = `${reg.host}/app:buildcache`;
  const a = ok(
    tsbuild(
      ['build', '--progress=plain', '-t', 'shared:1', '--cache-to', `type=registry,ref=${cacheRef},mode=max`, ctx],
      { root: storeA },
    ),
  );
  assert.equal(steps(a.stderr).ran, [
    'WORKDIR /app',
    'COPY a.txt ./',
    'RUN cat a.txt > /copy',
    'RUN echo "last $LAST" > /last && cat /copy >> /last',
  ]);
  assert.is(
    JSON.parse(sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${cacheRef}`])).artifactType,
    'application/vnd.tsbuild.cache.v1',
  );

  const storeB = temp('store-b-cache');
  const again = `${reg.host}/app:buildcache-again`;
  const b = ok(
    tsbuild(
      [
        'build',
        '--progress=plain',
        '-t',
        'shared:1',
        '--cache-from',
        `type=registry,ref=${cacheRef}`,
        '--cache-to',
        `type=registry,ref=${again},mode=max`,
        ctx,
      ],
      { root: storeB },
    ),
  );
  const sb = steps(b.stderr);
  assert.equal(sb.ran, [], b.stderr);
  assert.is(sb.cached.length, 4);
  // The same image (config); its cached layers came from the registry compressed, where storeA's are plain tars.
  assert.is(inspect(storeB, 'shared:1').Id, inspect(storeA, 'shared:1').Id);
  // The same records exported again (all cache hits this time, in another order) make the same artifact.
  // (All but the export time the artifact carries as its created annotation.)
  const content = (ref: string) => ({
    ...JSON.parse(sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])),
    annotations: undefined,
  });
  assert.equal(content(again), content(cacheRef));

  // A changed build arg on yet another empty store: the last RUN runs over layers that were only
  // fetched as blobs (their snapshots get unpacked for it), and reads what a cached step wrote.
  const storeC = temp('store-c-cache');
  const c = ok(
    tsbuild(
      [
        'build',
        '--progress=plain',
        '-t',
        'shared:2',
        '--build-arg',
        'LAST=2',
        '--cache-from',
        cacheRef,
        '-o',
        `type=local,dest=${join(storeC, 'out')}`,
        ctx,
      ],
      { root: storeC },
    ),
  );
  assert.equal(steps(c.stderr).ran, ['RUN echo "last $LAST" > /last && cat /copy >> /last']);
  assert.is(readFileSync(join(storeC, 'out', 'last'), 'utf8'), 'last 2\nshared\n');

  // Records from --cache-from serve only the build that asked for them: the same store, building
  // again without it, runs every step the registry's records had served (its own RUN still hits).
  const d = ok(tsbuild(['build', '--progress=plain', '--build-arg', 'LAST=2', ctx], { root: storeC }));
  assert.equal(steps(d.stderr).ran, ['WORKDIR /app', 'COPY a.txt ./', 'RUN cat a.txt > /copy'], d.stderr);
});

test(
  'login --password-stdin writes $DOCKER_CONFIG/config.json; pushes then authenticate; wrong password fails ' +
    'clearly',
  () => {
    const dockerConfig = temp('docker-config');
    const env = { DOCKER_CONFIG: dockerConfig };
    const target = `${authReg.host}/private/base:1`;
    ok(tsbuild(['tag', Base, target], { root: storeA }));

    const anonymous = tsbuild(['push', target], { root: storeA, env });
    assert.is(anonymous.code, 1);
    assert.match(anonymous.stderr, /401|unauthorized|credentials/i);

    const cases: { args: string[]; input?: string; code: number; stderr?: RegExp; stdout?: RegExp }[] = [
      {
        args: ['login', '-u', 'alice', '--password-stdin', authReg.host],
        input: 'wrong-pw\n',
        code: 1,
        stderr: /401|unauthorized|rejected/i,
      },
      {
        args: ['login', '--password-stdin', authReg.host],
        input: 's3cret-pw\n',
        code: 2,
        stderr: /--password-stdin needs --username/,
      },
      {
        args: ['login', '-u', 'alice', '-p', 'x', '--password-stdin', authReg.host],
        input: '',
        code: 2,
        stderr: /mutually exclusive/,
      },
      {
        args: ['login', '-u', 'alice', '--password-stdin', authReg.host],
        input: 's3cret-pw\n',
        code: 0,
        stdout: /Login Succeeded/,
      },
    ];
    for (const c of cases) {
      const r = tsbuild(c.args, { root: storeA, env, input: c.input });
      assert.is(r.code, c.code, `${c.args.join(' ')}\n${r.stderr}`);
      if (c.stderr) assert.match(r.stderr, c.stderr);
      if (c.stdout) assert.match(r.stdout, c.stdout);
      // Never a password in what we print.
      assert.not.match(r.stdout + r.stderr, /s3cret-pw|wrong-pw/);
    }
    const config = JSON.parse(readFileSync(join(dockerConfig, 'config.json'), 'utf8'));
    assert.is(Buffer.from(config.auths[authReg.host].auth, 'base64').toString(), 'alice:s3cret-pw');

    ok(tsbuild(['push', target], { root: storeA, env }));
    assert.is(
      JSON.parse(sh('skopeo', ['inspect', '--tls-verify=false', '--creds', 'alice:s3cret-pw', `docker://${target}`]))
        .Digest,
      baseDigest,
    );
    // An implicit FROM pull uses the same credentials.
    const ctx = context({ Dockerfile: `FROM ${target}\nRUN true\n` });
    dirs.push(ctx);
    ok(tsbuild(['build', '-q', ctx], { root: temp('store-auth-from'), env }));

    ok(tsbuild(['logout', authReg.host], { env }));
    assert.not.ok(JSON.parse(readFileSync(join(dockerConfig, 'config.json'), 'utf8')).auths?.[authReg.host]);
    assert.is(tsbuild(['pull', target], { root: temp('store-auth-pull'), env }).code, 1);
  },
);

test.run();
