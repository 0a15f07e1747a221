// Deferred compression through the CLI (issue 17): a build stores its layers uncompressed and they
// are compressed when the image leaves the store — push, --output, save — deterministically and
// once. Checked against a real `docker-registry`, skopeo, and `docker load` of a private dockerd.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tsbuild, tsbuildAsync, tempDirs } from './helpers/cli.js';
import { inspect, sh } from './helpers/image.js';
import { skip, startDockerd, startRegistry, type Dockerd, type TestRegistry } from '@tsbuild/testkit';

let reg: TestRegistry;
const { temp, dirs } = tempDirs();
const epoch = { SOURCE_DATE_EPOCH: '1700000000' };

/** 3 MB that gzip can shrink (text) next to 2 MB it cannot (a hash chain): both gzip paths (gzip.ts). */
function data(): string {
  const parts: string[] = [];
  for (let i = 0; i < 30_000; i++) parts.push(`line ${i} of the compressible part of the layer, padded out\n`);
  let h = Buffer.from('seed');
  const random: Buffer[] = [];
  for (let i = 0; i < 2_000_000 / 32; i++) random.push((h = createHash('sha256').update(h).digest()));
  return parts.join('') + Buffer.concat(random).toString('base64');
}
let ctx: string;

/** A COPY layer (writeLayer) and a RUN layer (the snapshotter's commit) over the busybox base. */
const dockerfile = `FROM ${Base}\nCOPY data.txt /data.txt\nRUN cp /data.txt /copy.txt && echo run > /run.txt\n`;

test.before(async () => {
  reg = await startRegistry();
  ctx = context({ Dockerfile: dockerfile, 'data.txt': data() });
  dirs.push(ctx);
});

test.after(async () => {
  await reg?.stop();
  cleanup(...dirs);
});

const remote = (ref: string) =>
  JSON.parse(sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])) as {
    config: { digest: string };
    layers: { mediaType: string; digest: string }[];
  };
const remoteDigest = (ref: string) =>
  JSON.parse(sh('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])).Digest as string;
const compressedCount = (stderr: string) => Number(/, (\d+) layers compressed/.exec(stderr)?.[1] ?? NaN);
const uploaded = (stderr: string) => Number(/uploaded (\d+) blobs/.exec(stderr)?.[1] ?? NaN);

/** Pushed manifest digest per compression, from the first store (the killed push must reproduce it). */
const pushed: Record<string, string> = {};
let storeA: string;

test('a build stores its layers uncompressed; --push compresses them; two fresh stores push the same digest', () => {
  const stores = [storeWithBase(temp('store-a')), storeWithBase(temp('store-b'))];
  storeA = stores[0]!;
  for (const c of ['gzip', 'zstd'] as const) {
    const digests: string[] = [];
    const ids: string[] = [];
    for (const [i, root] of stores.entries()) {
      const ref = `${reg.host}/repro-${c}:${i}`;
      const r = ok(
        tsbuild(['build', '--progress=plain', '--compression', c, '--push', '-t', ref, ctx], { root, env: epoch }),
      );
      assert.match(r.stderr, new RegExp(`compressed \\d+ layers \\(${c}\\)`));
      const stored = inspect(root, ref);
      // In the store: plain tars, named by their diffIDs.
      for (const [j, l] of (stored.Manifest.layers as { mediaType: string; digest: string }[]).entries()) {
        assert.is(l.mediaType, 'application/vnd.oci.image.layer.v1.tar', `${c} store ${i} layer ${j}`);
        assert.is(l.digest, stored.ImageConfig.rootfs.diff_ids[j]);
      }
      const m = remote(ref);
      assert.is(m.config.digest, stored.Id, 'the image id (config digest) is the one in the store');
      for (const l of m.layers) assert.is(l.mediaType, `application/vnd.oci.image.layer.v1.tar+${c}`);
      digests.push(remoteDigest(ref));
      ids.push(stored.Id);
    }
    assert.is(digests[0], digests[1], `${c}: same manifest digest from two fresh stores`);
    assert.is(ids[0], ids[1]);
    pushed[c] = digests[0]!;
  }
});

test('a second push, to the same or another repository, and an export after it compress nothing', () => {
  const ref = `${reg.host}/repro-gzip:0`;
  const again = ok(tsbuild(['push', '--progress=plain', ref], { root: storeA }));
  assert.is(compressedCount(again.stderr), 0, again.stderr);
  assert.is(uploaded(again.stderr), 0, again.stderr);
  assert.match(again.stdout, `digest: ${pushed.gzip}`);

  const other = `${reg.host}/elsewhere/app:1`;
  ok(tsbuild(['tag', ref, other], { root: storeA }));
  const moved = ok(tsbuild(['push', '--progress=plain', other], { root: storeA }));
  assert.is(compressedCount(moved.stderr), 0, moved.stderr);
  assert.is(remoteDigest(other), pushed.gzip);

  const out = temp('save');
  const trace = { TSBUILD_TRACE: '1' };
  const saved = ok(tsbuild(['save', '-o', join(out, 'a.tar'), ref], { root: storeA, env: trace }));
  assert.match(saved.stderr, `save ${ref}: 0 layers compressed`);
  // zstd was pushed too: a zstd export finds it; `none` never compresses.
  for (const c of ['zstd', 'none']) {
    const args = ['save', '--format', 'oci', '--compression', c, '-o', join(out, `${c}.tar`), ref];
    const r = ok(tsbuild(args, { root: storeA, env: trace }));
    assert.match(r.stderr, `save ${ref}: 0 layers compressed`, c);
  }
});

test('every export with every compression: skopeo reads it, docker load takes the docker ones', async () => {
  const work = temp('exports');
  let daemon: Dockerd | string;
  daemon = await startDockerd(join(work, 'd'), { args: ['--storage-driver', 'vfs'] });
  if (typeof daemon === 'string') return skip(`docker load: ${daemon}`);
  const d = daemon;
  try {
    const id = inspect(storeA, `${reg.host}/repro-gzip:0`).Id;
    for (const c of ['gzip', 'zstd', 'none'] as const) {
      const out = join(work, c);
      const tag = `deferred/${c}:1`;
      const outputs = [`type=oci,dest=${out}/layout,tar=false`, `type=oci-archive,dest=${out}/oci.tar`];
      const build = (more: string[]) =>
        tsbuild(
          ['build', '-q', '--compression', c, '-t', tag, ...[...outputs, ...more].flatMap((o) => ['-o', o]), ctx],
          {
            root: storeA,
            env: epoch,
          },
        );
      const dockerOut = [`type=docker,dest=${out}/docker.tar`];
      const saveDocker = ['save', '--compression', c, '-o', `${out}/save-docker.tar`, tag];
      if (c === 'zstd') {
        // docker load (20.10) cannot read zstd layers: a docker archive with them is refused up front.
        for (const r of [build(dockerOut), tsbuild(saveDocker, { root: storeA })]) {
          assert.is(r.code, 2, r.stderr);
          assert.match(r.stderr, 'docker load (20.10) cannot read zstd layers');
        }
        assert.not.ok(existsSync(`${out}/docker.tar`));
        ok(build([]));
      } else {
        ok(build(dockerOut));
        ok(tsbuild(saveDocker, { root: storeA }));
      }
      const saveOci = ['save', '--format', 'oci', '--compression', c, '-o', `${out}/save-oci.tar`, tag];
      ok(tsbuild(saveOci, { root: storeA }));
      const suffix = c === 'none' ? '' : `+${c}`;
      for (const src of [`oci:${out}/layout:1`, `oci-archive:${out}/oci.tar`, `oci-archive:${out}/save-oci.tar`]) {
        const m = JSON.parse(sh('skopeo', ['inspect', '--raw', src]));
        assert.is(m.config.digest, id, src);
        // The base's layer and the two new ones, compressed as asked.
        for (const l of m.layers) assert.ok(l.mediaType.endsWith(`.tar${suffix}`), `${src}: ${l.mediaType}`);
        // A copy re-reads every blob against its digest.
        sh('skopeo', ['copy', src, `dir:${join(out, 'copy-' + readdirSync(out).length)}`]);
      }
      for (const file of c === 'zstd' ? [] : ['docker.tar', 'save-docker.tar']) {
        const src = `docker-archive:${out}/${file}`;
        assert.is(JSON.parse(sh('skopeo', ['inspect', src])).Digest.length, 71, src);
        // docker unpacks every layer and checks it against the config's diff_ids.
        const loaded = execFileSync('/usr/bin/docker', ['-H', d.host, 'load', '-i', `${out}/${file}`], {
          encoding: 'utf8',
        });
        assert.match(loaded, `Loaded image: ${tag}`, `${c} ${file}`);
        const [img] = JSON.parse(
          execFileSync('/usr/bin/docker', ['-H', d.host, 'image', 'inspect', tag], { encoding: 'utf8' }),
        );
        assert.is(img.Id, id, `${c} ${file}: docker's image id is ours`);
        execFileSync('/usr/bin/docker', ['-H', d.host, 'rmi', tag], { encoding: 'utf8' });
      }
    }
  } finally {
    await d.stop();
  }
});

test('a push killed -9 in the middle of compressing leaves a store the next push uses', async () => {
  const root = storeWithBase(temp('store-killed'));
  const ref = `${reg.host}/killed:1`;
  ok(tsbuild(['build', '-q', '-t', ref, ctx], { root, env: epoch }));
  const gate = join(temp('gate'), 'open');
  const child = tsbuildAsync(['push', ref], { root, env: { TSBUILD_TEST_COMPRESS_GATE: gate } });
  let stderr = '';
  child.stderr.on('data', (b) => (stderr += b));
  const exited = new Promise<number | null>((r) => child.on('exit', (code, signal) => r(signal ? -1 : code)));
  // The gate: compression has begun, its first piece is in a temp file of the store and on the wire.
  while (!existsSync(`${gate}.waiting`)) {
    if (child.exitCode !== null) assert.unreachable(`push ended before compressing: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(
    readdirSync(join(root, 'tmp')).some((n) => n.startsWith('ingest-')),
    'a compressed blob was being written',
  );
  child.kill('SIGKILL');
  assert.is(await exited, -1);
  assert.throws(() => remoteDigest(ref), 'nothing was tagged in the registry');

  const r = ok(tsbuild(['push', '--progress=plain', ref], { root }));
  assert.match(r.stdout, `digest: ${pushed.gzip}`, 'the same manifest as a push from a fresh store');
  assert.is(compressedCount(r.stderr), 3, 'each layer compressed once');
  assert.is(remoteDigest(ref), pushed.gzip);
  assert.equal(
    readdirSync(join(root, 'tmp')).filter((n) => n.startsWith('ingest-')),
    [],
    "the dead push's temp file is gone",
  );
  ok(tsbuild(['check'], { root }));
  // And it is remembered now.
  const again = ok(tsbuild(['push', '--progress=plain', ref], { root }));
  assert.is(compressedCount(again.stderr), 0);
  writeFileSync(gate, ''); // nothing waits on it any more
});

test.run();
