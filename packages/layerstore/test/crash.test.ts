// Crash safety: SIGKILL a writer at random points, many times; the store must always reopen clean.
// Concurrency: two processes tagging at once lose nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fork } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Store } from '../src/store.js';
import { tempRoot } from './storekit.js';

const writer = join(dirname(fileURLToPath(import.meta.url)), 'procs', 'writer.js');
const ITERATIONS = Number(process.env.CRASH_ITERATIONS ?? 30);

function run(args: string[]): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = fork(writer, args, { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
}

async function checkStore(root: string): Promise<{ blobs: number; tags: number }> {
  const store = await Store.open(root);
  const names = await fsp.readdir(join(root, 'blobs', 'sha256'));
  for (const n of names) {
    assert.match(n, /^[a-f0-9]{64}$/, `only committed blobs under blobs/: ${n}`);
    const data = await fsp.readFile(join(root, 'blobs', 'sha256', n));
    assert.is(createHash('sha256').update(data).digest('hex'), n, `blob ${n} matches its digest`);
  }
  const index = JSON.parse(await fsp.readFile(join(root, 'index.json'), 'utf8'));
  assert.ok(Array.isArray(index.manifests), 'index.json parses');
  for (const { record } of await store.cache.list()) assert.ok(Array.isArray(record.blobs));
  // The next write succeeds (and breaks any lock the dead writer held).
  const { digest, size } = await store.blobs.put(`after crash ${Date.now()} ${Math.random()}`);
  await store.tags.set('check:after', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size });
  assert.is((await store.tags.get('check:after'))?.digest, digest);
  return { blobs: names.length, tags: index.manifests.length };
}

test(`crash safety: SIGKILL a writer ${ITERATIONS} times at random points`, async () => {
  const { dir, cleanup } = await tempRoot('ls-crash-');
  const root = join(dir, 'store');
  const started = Date.now();
  try {
    let last = { blobs: 0, tags: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      const child = fork(writer, ['loop', root], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      await new Promise<void>((resolve, reject) => {
        child.once('message', () => resolve());
        child.once('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
      });
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 150));
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      last = await checkStore(root);
    }
    const leftovers = await fsp.readdir(join(root, 'tmp'));
    assert.equal(leftovers, [], 'temp files of dead writers are cleaned on open');
    console.log(
      `  crash: ${ITERATIONS} kills in ${Date.now() - started} ms; store holds ${last.blobs} blobs, ${last.tags} tags`,
    );
  } finally {
    await cleanup();
  }
});

test('two processes each set 50 tags at once: all 100 present', async () => {
  const { dir, cleanup } = await tempRoot('ls-conc-');
  const root = join(dir, 'store');
  try {
    await Store.open(root);
    const t0 = Date.now();
    const codes = await Promise.all([run(['tags', root, 'one/app', '50']), run(['tags', root, 'two/app', '50'])]);
    assert.equal(codes, [0, 0]);
    const store = await Store.open(root);
    const names = (await store.tags.list()).map((t) => t.name);
    assert.is(names.length, 100);
    for (const p of ['one', 'two'])
      for (let i = 0; i < 50; i++) assert.ok(names.includes(`docker.io/${p}/app:${i}`), `${p}/app:${i}`);
    console.log(`  concurrency: 2 x 50 tags in ${Date.now() - t0} ms`);
  } finally {
    await cleanup();
  }
});

test.run();
