import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../src/store.js';
import { StoreError, type Digest } from '../src/types.js';
import { spawnSync } from 'node:child_process';
import { have, skip } from '@tsbuild/testkit';
import { collect, sampleImage, sha, tempRoot, tempStore } from './storekit.js';

const good = Buffer.from('hello blob\n');
const goodDigest = sha(good);

interface IngestCase {
  name: string;
  bytes: Buffer;
  expected?: { digest?: Digest; size?: number };
  error?: RegExp;
}
const ingestCases: IngestCase[] = [
  { name: 'good, no expectation', bytes: good },
  { name: 'good, expected digest and size', bytes: good, expected: { digest: goodDigest, size: good.length } },
  { name: 'empty blob', bytes: Buffer.alloc(0), expected: { digest: sha(''), size: 0 } },
  { name: 'wrong digest', bytes: good, expected: { digest: sha('other') }, error: /digest mismatch/ },
  { name: 'wrong size', bytes: good, expected: { size: good.length + 1 }, error: /size mismatch/ },
  {
    name: 'malformed expected digest',
    bytes: good,
    expected: { digest: 'sha256:../../etc/passwd' },
    error: /not sha256:<64 hex/,
  },
];

for (const c of ingestCases) {
  test(`ingest: ${c.name}`, async () => {
    const { store, cleanup } = await tempStore();
    try {
      const w = store.blobs.ingest();
      w.write(c.bytes.subarray(0, 3));
      w.write(c.bytes.subarray(3));
      const p = w.commit(c.expected);
      if (c.error) {
        await p.then(
          () => assert.unreachable('commit should fail'),
          (e: Error) => assert.match(e.message, c.error!),
        );
        assert.equal((await store.blobs.list()).length, 0, 'nothing unverified is visible');
      } else {
        const r = await p;
        assert.is(r.digest, sha(c.bytes));
        assert.is(r.size, c.bytes.length);
        assert.ok(await store.blobs.has(r.digest));
        assert.equal(await collect(store.blobs.open(r.digest)), c.bytes);
        assert.equal(await store.blobs.read(r.digest), c.bytes);
      }
      assert.equal(await fsp.readdir(store.tmpDir), [], 'temp file removed');
    } finally {
      await cleanup();
    }
  });
}

// Large blobs written without waiting for 'drain' (as a download's pieces queue up while the file is
// written): the queue goes down in writev calls, and past 32 MiB a flush-behind fdatasync runs while
// more is written. The bytes, the digest and the rule "nothing unverified visible" must not change.
const pseudoRandom = (n: number) => {
  const b = Buffer.alloc(n);
  let x = 2463534242;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
};
const largeCases = [
  { name: '5 MiB in 64 KiB pieces (past the write buffer)', size: 5 << 20, piece: 65536, end: 'commit' },
  { name: '70 MiB in 64 KiB pieces (flush-behind twice)', size: 70 << 20, piece: 65536, end: 'commit' },
  { name: '40 MiB in odd pieces, wrong digest', size: 40 << 20, piece: 65537, end: 'wrong' },
  { name: '40 MiB, aborted after the flush-behind started', size: 40 << 20, piece: 1 << 20, end: 'abort' },
] as const;
for (const c of largeCases) {
  test(`ingest: ${c.name}`, async () => {
    const { store, cleanup } = await tempStore();
    try {
      const bytes = pseudoRandom(c.size);
      const w = store.blobs.ingest();
      for (let off = 0; off < bytes.length; off += c.piece) w.write(bytes.subarray(off, off + c.piece));
      if (c.end === 'abort') {
        await new Promise<void>((r) => w.once('drain', () => r()));
        await w.abort();
      } else if (c.end === 'wrong') {
        await w.commit({ digest: sha('other'), size: bytes.length }).then(
          () => assert.unreachable('commit should fail'),
          (e: Error) => assert.match(e.message, /digest mismatch/),
        );
      } else {
        const r = await w.commit({ digest: sha(bytes), size: bytes.length });
        assert.is(r.digest, sha(bytes));
        assert.ok((await fsp.readFile(store.blobs.path(r.digest))).equals(bytes), 'the bytes on disk');
      }
      assert.equal(await store.blobs.list(), c.end === 'commit' ? [sha(bytes)] : [], 'only a verified blob');
      assert.equal(await fsp.readdir(store.tmpDir), [], 'temp file removed');
    } finally {
      await cleanup();
    }
  });
}

test('ingest: abort removes the temp file', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const w = store.blobs.ingest();
    w.write(good);
    await new Promise((r) => setTimeout(r, 10));
    await w.abort();
    assert.equal(await fsp.readdir(store.tmpDir), []);
    assert.equal(await store.blobs.list(), []);
  } finally {
    await cleanup();
  }
});

test('ingest: digest() tells the digest before commit, and nothing is visible until commit', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const w = store.blobs.ingest();
    w.write(good.subarray(0, 4));
    w.write(good.subarray(4));
    assert.equal(await w.digest!(), { digest: goodDigest, size: good.length });
    assert.is(await store.blobs.has(goodDigest), false, 'not in blobs/ before commit');
    assert.equal(await w.commit({ digest: goodDigest }), { digest: goodDigest, size: good.length });
    assert.equal(await store.blobs.read(goodDigest), good);
    // Aborted after digest(): the temp file goes, nothing is committed.
    const v = store.blobs.ingest();
    v.write(Buffer.from('other'));
    assert.is((await v.digest!()).digest, sha('other'));
    await v.abort();
    assert.equal(await fsp.readdir(store.tmpDir), []);
    assert.is(await store.blobs.has(sha('other')), false);
  } finally {
    await cleanup();
  }
});

test('corrupt on disk: a flipped byte is detected by open(), read() and readJSON()', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const big = Buffer.alloc(300_000, 7);
    const { digest } = await store.blobs.put(big);
    const { digest: jd } = await store.blobs.put('{"a":1}');
    for (const d of [digest, jd]) {
      const p = store.blobs.path(d);
      await fsp.chmod(p, 0o644);
      const buf = await fsp.readFile(p);
      buf[buf.length >> 1] ^= 0xff;
      await fsp.writeFile(p, buf);
    }
    await collect(store.blobs.open(digest)).then(
      () => assert.unreachable('open should fail'),
      (e: StoreError) => {
        assert.instance(e, StoreError);
        assert.is(e.code, 'corrupt');
        assert.match(e.message, `blob ${digest} is corrupt`);
      },
    );
    await store.blobs.read(digest).then(
      () => assert.unreachable(),
      (e: StoreError) => assert.is(e.code, 'corrupt'),
    );
    await store.blobs.readJSON(jd).then(
      () => assert.unreachable(),
      (e: StoreError) => assert.is(e.code, 'corrupt'),
    );
    // Truncation too.
    await fsp.truncate(store.blobs.path(digest), 10);
    await collect(store.blobs.open(digest)).then(
      () => assert.unreachable(),
      (e: StoreError) => assert.is(e.code, 'corrupt'),
    );
  } finally {
    await cleanup();
  }
});

test('open of a missing blob fails with not-found; hostile digests are rejected', async () => {
  const { store, cleanup } = await tempStore();
  try {
    await collect(store.blobs.open(sha('nope'))).then(
      () => assert.unreachable(),
      (e: StoreError) => assert.is(e.code, 'not-found'),
    );
    for (const bad of [
      'sha256:../../../etc/passwd',
      'sha512:' + 'a'.repeat(128),
      'sha256:' + 'A'.repeat(64),
      'sha256:abc',
    ]) {
      await store.blobs.has(bad as Digest).then(
        () => assert.unreachable(bad),
        (e: StoreError) => assert.is(e.code, 'invalid'),
      );
      await collect(store.blobs.open(bad as Digest)).then(
        () => assert.unreachable(bad),
        (e: StoreError) => assert.is(e.code, 'invalid'),
      );
    }
  } finally {
    await cleanup();
  }
});

test('concurrent ingest of the same blob: both commit, one blob, correct bytes', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const data = Buffer.alloc(1 << 20, 'x');
    const writers = Array.from({ length: 8 }, () => store.blobs.ingest());
    for (let off = 0; off < data.length; off += 65536)
      for (const w of writers) w.write(data.subarray(off, off + 65536));
    const results = await Promise.all(writers.map((w) => w.commit({ digest: sha(data), size: data.length })));
    for (const r of results) assert.is(r.digest, sha(data));
    assert.equal(await store.blobs.list(), [sha(data)]);
    assert.equal(await store.blobs.read(sha(data)), data);
    assert.equal(await fsp.readdir(store.tmpDir), []);
  } finally {
    await cleanup();
  }
});

test('Store.open creates an OCI layout and the working dirs; reopening keeps tags', async () => {
  const { store, dir, cleanup } = await tempStore();
  try {
    for (const d of ['oci-layout', 'index.json', 'blobs/sha256', 'snapshots', 'cache', 'tmp', 'locks']) {
      await fsp.stat(join(store.root, d));
    }
    assert.equal(JSON.parse(await fsp.readFile(join(store.root, 'oci-layout'), 'utf8')), {
      imageLayoutVersion: '1.0.0',
    });
    const img = await sampleImage(store);
    await store.images.tag('app:1', img);
    const again = await Store.open(join(dir, 'store'));
    assert.is((await again.tags.get('docker.io/library/app:1'))?.digest, img.manifestDigest);
  } finally {
    await cleanup();
  }
});

// The store holds every image's files with their modes: a 0644 file a RUN step wrote, a setuid
// binary, a 0666 device node. Another host user must not reach any of them (moby CVE-2021-41091).
const privacyCases: { name: string; before?: (root: string) => Promise<void> }[] = [
  { name: 'a new store' },
  {
    name: 'an existing 0755 store (made before stores were private) is tightened on open',
    before: (root) => fsp.chmod(root, 0o755),
  },
];
for (const c of privacyCases) {
  test(`store privacy: ${c.name}`, async () => {
    if (process.getuid?.() !== 0) return skip('needs root to read as another user', { required: false });
    if (!have('setpriv')) return skip('setpriv (util-linux) not installed');
    const { dir, cleanup } = await tempRoot();
    try {
      await fsp.chmod(dir, 0o755); // mkdtemp's 0700 would hide the store whatever its own mode
      const root = join(dir, 'store');
      await Store.open(root);
      const secret = join(root, 'snapshots', 'a'.repeat(64), 's');
      await fsp.mkdir(join(secret, '..'), { mode: 0o755 });
      await fsp.writeFile(secret, 'secret\n', { mode: 0o644 });
      const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
      const asNobody = () => spawnSync('setpriv', [...nobody, 'cat', secret], { encoding: 'utf8' });
      if (c.before) {
        await c.before(root);
        assert.is(asNobody().stdout, 'secret\n', 'the check can see an open store');
        await Store.open(root);
      }
      assert.is(((await fsp.stat(root)).mode & 0o7777).toString(8), '700');
      const r = asNobody();
      assert.is(r.stdout, '');
      assert.ok(r.status !== 0 && /Permission denied/.test(r.stderr), r.stderr);
    } finally {
      await cleanup();
    }
  });
}

const tagCases: { set: string; lookups: string[] }[] = [
  { set: 'app:1', lookups: ['app:1', 'docker.io/library/app:1', 'library/app:1', 'index.docker.io/library/app:1'] },
  { set: 'app', lookups: ['app:latest', 'app', 'docker.io/library/app'] },
  { set: 'localhost:5000/team/app:v2', lookups: ['localhost:5000/team/app:v2'] },
  { set: 'user/tool:1.0', lookups: ['docker.io/user/tool:1.0'] },
];

test('tags: set/get/list/delete with normalised names, annotations in index.json', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const img = await sampleImage(store);
    for (const c of tagCases) {
      await store.images.tag(c.set, img);
      for (const l of c.lookups) assert.is((await store.tags.get(l))?.digest, img.manifestDigest, l);
    }
    const index = JSON.parse(await fsp.readFile(join(store.root, 'index.json'), 'utf8'));
    const names = index.manifests
      .map((m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name'])
      .sort();
    assert.equal(names, [
      'docker.io/library/app:1',
      'docker.io/library/app:latest',
      'docker.io/user/tool:1.0',
      'localhost:5000/team/app:v2',
    ]);
    for (const m of index.manifests)
      assert.is(m.annotations['io.containerd.image.name'], m.annotations['org.opencontainers.image.ref.name']);
    assert.is((await store.tags.list()).length, 4);
    assert.ok(await store.tags.delete('app:1'));
    assert.not.ok(await store.tags.delete('app:1'));
    assert.is(await store.tags.get('app:1'), undefined);
    assert.is((await store.tags.list()).length, 3);
  } finally {
    await cleanup();
  }
});

test('images: write (oci and docker) and get by tag, manifest digest, image id and short id', async () => {
  const { store, cleanup } = await tempStore();
  try {
    for (const format of ['oci', 'docker'] as const) {
      const img = await sampleImage(store, format);
      await store.images.tag(`img:${format}`, img);
      const mt =
        format === 'oci'
          ? 'application/vnd.oci.image.manifest.v1+json'
          : 'application/vnd.docker.distribution.manifest.v2+json';
      assert.is(img.manifest.mediaType, mt);
      assert.is(
        img.manifest.config.mediaType,
        format === 'oci'
          ? 'application/vnd.oci.image.config.v1+json'
          : 'application/vnd.docker.container.image.v1+json',
      );
      assert.is(
        img.manifest.layers[0].mediaType,
        format === 'oci'
          ? 'application/vnd.oci.image.layer.v1.tar+gzip'
          : 'application/vnd.docker.image.rootfs.diff.tar.gzip',
      );
      for (const key of [
        `img:${format}`,
        `docker.io/library/img:${format}`,
        img.manifestDigest,
        `img@${img.manifestDigest}`,
      ]) {
        const got = await store.images.get(key);
        assert.ok(got, key);
        assert.is(got.manifestDigest, img.manifestDigest, key);
      }
      // By image id (the config digest, shared by the oci and docker variants of the same image).
      for (const key of [img.configDigest, img.configDigest.slice(7, 19), `sha256:${img.configDigest.slice(7, 19)}`]) {
        assert.is((await store.images.get(key))?.configDigest, img.configDigest, key);
      }
      const cfg = (await store.images.get(`img:${format}`))!.config;
      assert.equal(cfg.config?.Healthcheck, { Test: ['CMD', 'true'], Interval: 30_000_000_000 });
      assert.equal(cfg.config?.Shell, ['/bin/sh', '-c']);
      assert.equal(cfg.config?.OnBuild, ['RUN echo hi']);
      assert.is(cfg.config?.StopSignal, 'SIGTERM');
    }
    assert.is(await store.images.get('nothere:1'), undefined);
    assert.is(await store.images.get('sha256:' + 'f'.repeat(64)), undefined);
    const list = await store.images.list();
    assert.equal(list.map((r) => [r.repository, r.tag]).sort(), [
      ['img', 'docker'],
      ['img', 'oci'],
    ]);
    for (const r of list) {
      assert.ok(r.size > 0);
      assert.is(r.created, '2024-01-02T03:04:05Z');
      assert.match(r.id, /^sha256:[a-f0-9]{64}$/);
    }
  } finally {
    await cleanup();
  }
});

test('images.write rejects missing layers and mismatched diff_ids', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const img = await sampleImage(store);
    const bad = { ...img.layers[0], digest: sha('missing') };
    await store.images.write({ config: img.config, layers: [bad, img.layers[1]] }).then(
      () => assert.unreachable(),
      (e: StoreError) => assert.is(e.code, 'not-found'),
    );
    await store.images.write({ config: img.config, layers: [img.layers[0]] }).then(
      () => assert.unreachable(),
      (e: StoreError) => assert.is(e.code, 'invalid'),
    );
  } finally {
    await cleanup();
  }
});

test('cache: put/get/list/delete; bad keys rejected', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const key = sha('step 1');
    assert.is(await store.cache.get(key), undefined);
    const { digest } = await store.blobs.put('layer');
    await store.cache.put(key, { value: { layer: digest, n: 1 }, blobs: [digest] });
    assert.equal(await store.cache.get(key), { value: { layer: digest, n: 1 }, blobs: [digest] });
    assert.equal(
      (await store.cache.list()).map((e) => e.key),
      [key],
    );
    assert.ok(await store.cache.delete(key));
    assert.is(await store.cache.get(key), undefined);
    await store.cache.get('sha256:../x').then(
      () => assert.unreachable(),
      (e: StoreError) => assert.is(e.code, 'invalid'),
    );
  } finally {
    await cleanup();
  }
});

// putStream: the same record put() writes, from parts; a producer that fails leaves the old record and no temp file.
test('cache: putStream writes a record in parts, atomically', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const key = sha('inputs 1');
    const { digest } = await store.blobs.put('manifest');
    const pairs = Array.from({ length: 5000 }, (_, i) => [`file:d/${i}`, `file:644:${'a'.repeat(64)}`]);
    async function* parts(fail: boolean): AsyncGenerator<string | Buffer> {
      yield '{"inputs":[';
      for (let i = 0; i < pairs.length; i += 1000) {
        if (fail && i > 0) throw new Error('producer failed');
        const text = pairs
          .slice(i, i + 1000)
          .map((p) => JSON.stringify(p))
          .join(',');
        yield i === 0 ? text : Buffer.from(`,${text}`);
      }
      yield ']}';
    }
    await store.cache.putStream(key, parts(false), () => Promise.resolve({ blobs: [digest] }));
    const written = { value: { inputs: pairs }, blobs: [digest] };
    assert.equal(await store.cache.get(key), written);
    // Byte for byte what put() writes: records of either writer read the same.
    const file = join(store.cache.dir, `${key.slice(7)}.json`);
    assert.is(await fsp.readFile(file, 'utf8'), JSON.stringify(written));
    await store.cache
      .putStream(key, parts(true), () => Promise.resolve({ blobs: [] }))
      .then(
        () => assert.unreachable(),
        (e: Error) => assert.match(e.message, /producer failed/),
      );
    assert.equal(await store.cache.get(key), written);
    assert.equal(
      (await fsp.readdir(join(store.root, 'tmp'))).filter((n) => n.endsWith('.tmp')),
      [],
    );
    await store.cache
      .putStream(key, parts(false), () => Promise.resolve({ blobs: ['sha256:../x' as Digest] }))
      .then(
        () => assert.unreachable(),
        (e: StoreError) => assert.is(e.code, 'invalid'),
      );
    assert.equal(await store.cache.get(key), written);
  } finally {
    await cleanup();
  }
});

test('tempDir: unique dirs under tmp/', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const a = await store.tempDir('upper');
    const b = await store.tempDir('upper');
    assert.is.not(a, b);
    assert.ok(a.startsWith(store.tmpDir + '/upper-'));
  } finally {
    await cleanup();
  }
});

test.run();
