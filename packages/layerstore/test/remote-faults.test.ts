// Pushes and pulls through a fault-injecting proxy: connection resets mid-upload and
// mid-download, 500/503/429 answers. Everything still arrives intact, and the bytes resent
// stay bounded.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as remote from '../src/remote/index.js';
import type { FaultRule } from './helpers/faultproxy.js';
import { makeImage, sha256, skopeo } from './helpers/registry-image.js';
import { withRegistry } from './helpers/registry-suite.js';

const test = suite('remote: faults');
const opts = {
  credentials: remote.noCredentials,
  retry: { attempts: 6, baseDelayMs: 10, maxDelayMs: 100 },
  timeoutMs: 10_000,
  chunkThreshold: 256 * 1024,
  chunkSize: 200 * 1024,
};

const env = withRegistry(test);
const { store, tmp } = env;

const uploads = /\/blobs\/uploads\//;
const pushSchedules: Array<{ name: string; concurrency: number; rules: FaultRule[] }> = [
  {
    name: 'resets mid-chunk and mid-PUT, 5xx and 429',
    concurrency: 1,
    rules: [
      { method: 'POST', path: uploads, nth: 1, fault: { kind: 'status', status: 503, retryAfter: 0 } },
      { method: 'PATCH', path: uploads, nth: 2, fault: { kind: 'reset-upload', afterBytes: 50_000 } },
      { method: 'PATCH', path: uploads, nth: 4, fault: { kind: 'reset-early' } },
      { method: 'PATCH', path: uploads, nth: 6, fault: { kind: 'status', status: 500 } },
      { method: 'PUT', path: uploads, nth: 2, fault: { kind: 'reset-upload', afterBytes: 30_000 } },
      { method: 'HEAD', path: /\/blobs\/sha256:/, nth: 3, fault: { kind: 'status', status: 502 } },
      { method: 'PUT', path: /\/manifests\//, nth: 1, fault: { kind: 'status', status: 429, retryAfter: 1 } },
    ],
  },
  {
    name: 'the same faults with three uploads in parallel',
    concurrency: 3,
    rules: [
      { method: 'PATCH', path: uploads, nth: 2, fault: { kind: 'reset-upload', afterBytes: 100_000 } },
      { method: 'PATCH', path: uploads, nth: 3, fault: { kind: 'reset-early' } },
      { method: 'PUT', path: uploads, nth: 1, fault: { kind: 'reset-upload', afterBytes: 1_000 } },
      { method: 'POST', path: uploads, nth: 2, fault: { kind: 'status', status: 500 } },
      { method: 'PUT', path: /\/manifests\//, nth: 1, fault: { kind: 'reset-early' } },
    ],
  },
];

for (const [i, c] of pushSchedules.entries()) {
  test(`push survives: ${c.name}`, async () => {
    const { blobs } = store();
    const img = await makeImage(blobs, [700_000, 150_000, 20_000], 100 + i);
    env.proxy.resetCounters();
    env.proxy.setRules(c.rules);
    const res = await remote.push(
      blobs,
      { manifestDigest: img.manifestDigest },
      `${env.proxy.host}/faults/push${i}:1`,
      { ...opts, concurrency: c.concurrency },
    );
    assert.is(res.descriptor.digest, img.manifestDigest);
    assert.is(env.proxy.fired.length, c.rules.length, `every fault fired: ${env.proxy.fired.join(', ')}`);
    if (process.env.REMOTE_VERBOSE)
      console.log(
        `push ${i}: sent ${env.proxy.bytesUp} for ${img.totalSize} ` +
          `(${(env.proxy.bytesUp / img.totalSize).toFixed(2)}x), resumes ${res.stats.resumes}, faults: ` +
          `${env.proxy.fired.join(', ')}`,
      );
    assert.ok(
      env.proxy.bytesUp <= 3 * img.totalSize,
      `sent ${env.proxy.bytesUp} bytes for an image of ${img.totalSize}`,
    );
    env.proxy.setRules([]);
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${env.reg.host}/faults/push${i}:1`]);
    assert.is(sha256(raw), img.manifestDigest);
    const dir = tmp('tsbuild-oci-');
    await skopeo([
      '--insecure-policy',
      'copy',
      '--src-tls-verify=false',
      `docker://${env.reg.host}/faults/push${i}:1`,
      `oci:${dir}:x`,
    ]);
  });
}

test('a broken chunk with nothing received resumes at the registry offset instead of restarting', async () => {
  const { blobs } = store();
  const img = await makeImage(blobs, [900_000], 120);
  env.proxy.resetCounters();
  env.proxy.setRules([{ method: 'PATCH', path: uploads, nth: 3, fault: { kind: 'reset-early' } }]);
  const res = await remote.push(
    blobs,
    { manifestDigest: img.manifestDigest },
    `${env.proxy.host}/faults/resume:1`,
    opts,
  );
  assert.is(res.stats.resumes, 1);
  assert.ok(
    env.proxy.requests.some((r) => r.method === 'GET' && uploads.test(r.path) && r.status === 204),
    'asked for the upload status',
  );
  assert.is(env.proxy.bytesUp, img.totalSize, 'not a byte sent twice');
});

const pullSchedules: Array<{ name: string; rules: FaultRule[] }> = [
  {
    name: 'resets mid-download, 503 on the manifest, 429 on a blob',
    rules: [
      { method: 'GET', path: /\/manifests\//, nth: 1, fault: { kind: 'status', status: 503, retryAfter: 0 } },
      { method: 'GET', path: /\/blobs\//, nth: 2, fault: { kind: 'reset-download', afterBytes: 300_000 } },
      { method: 'GET', path: /\/blobs\//, nth: 3, fault: { kind: 'reset-download', afterBytes: 10 } },
      { method: 'GET', path: /\/blobs\//, nth: 5, fault: { kind: 'status', status: 429, retryAfter: 0 } },
      { method: 'GET', path: /\/blobs\//, nth: 6, fault: { kind: 'reset-early' } },
      { method: 'GET', path: /\/blobs\//, nth: 7, fault: { kind: 'reset-download', afterBytes: 1000 } },
    ],
  },
];

for (const c of pullSchedules) {
  test(`pull survives: ${c.name}`, async () => {
    const src = store();
    const img = await makeImage(src.blobs, [700_000, 150_000, 20_000], 130);
    env.proxy.setRules([]);
    await remote.push(src.blobs, { manifestDigest: img.manifestDigest }, `${env.reg.host}/faults/pull:1`, opts);
    env.proxy.resetCounters();
    env.proxy.setRules(c.rules);
    const dst = store();
    const res = await remote.pull(dst.blobs, `${env.proxy.host}/faults/pull:1`, opts);
    assert.is(res.manifestDigest, img.manifestDigest);
    assert.ok(env.proxy.fired.length >= 5, env.proxy.fired.join(', '));
    assert.ok(res.stats.resumes >= 2, `resumed ${res.stats.resumes} downloads with Range`);
    if (process.env.REMOTE_VERBOSE)
      console.log(
        `pull: received ${env.proxy.bytesDown} for ${img.totalSize} ` +
          `(${(env.proxy.bytesDown / img.totalSize).toFixed(2)}x), resumes ${res.stats.resumes}, faults: ` +
          `${env.proxy.fired.join(', ')}`,
      );
    assert.ok(
      env.proxy.bytesDown <= 3 * img.totalSize,
      `received ${env.proxy.bytesDown} bytes for an image of ${img.totalSize}`,
    );
    for (const d of [img.config.digest, ...img.layers.map((l) => l.digest)]) {
      assert.is(sha256(await dst.blobs.read(d)), d);
    }
  });
}

test('when retries run out the error names the blob, the host, the status and the registry message', async () => {
  const { blobs } = store();
  const img = await makeImage(blobs, [5_000], 140);
  env.proxy.setRules(
    Array.from({ length: 10 }, (_, n) => ({
      method: 'POST',
      path: uploads,
      nth: n + 1,
      fault: { kind: 'status' as const, status: 500 },
    })),
  );
  try {
    await remote.push(blobs, { manifestDigest: img.manifestDigest }, `${env.proxy.host}/faults/giveup:1`, {
      ...opts,
      retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
      concurrency: 1,
    });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, remote.RegistryError);
    const e = err as remote.RegistryError;
    assert.is(e.status, 500);
    assert.match(
      e.message,
      new RegExp(
        `pushing blob ${img.layers[0].digest} to ${env.proxy.host.replace(/\./g, '\\.')}/faults/giveup: ` +
          `${env.proxy.host.replace(/\./g, '\\.')} answered HTTP 500 UNAVAILABLE: injected fault`,
      ),
    );
  } finally {
    env.proxy.setRules([]);
  }
});

test.run();
