// ChainIDs, and the snapshot life cycle: ensure (idempotent, concurrent), adopt, remove, list,
// cleanup; a failed unpack leaves nothing behind.
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeLayer } from '../src/layer/index.js';
import { chainID, chainIDs, Snapshots } from '../src/snapshot/index.js';
import { StoreError, type Digest, type Entry, type Layer } from '../src/types.js';
import { TempBlobs } from './helpers/temp-blobs.js';

const work = mkdtempSync(join(tmpdir(), 'snap-'));
const p = (...s: string[]) => join(work, ...s);
const blobs = new TempBlobs(p('blobs'));

const d = (c: string) => `sha256:${c.repeat(64)}` as Digest;
const shell = (s: string) =>
  `sha256:${
    execFileSync('sh', ['-c', `printf '%s' '${s}' | sha256sum`])
      .toString()
      .split(' ')[0]
  }` as Digest;

test('chainID: L0 is its diffID; Ln = sha256(ChainID(Ln-1) + " " + DiffID(Ln)) (checked with sha256sum)', () => {
  assert.is(chainID([d('a')]), d('a'));
  const two = shell(`${d('a')} ${d('b')}`);
  assert.is(chainID([d('a'), d('b')]), two);
  assert.is(chainID([d('a'), d('b'), d('c')]), shell(`${two} ${d('c')}`));
  assert.equal(chainIDs([d('a'), d('b'), d('c')]), [d('a'), two, shell(`${two} ${d('c')}`)]);
});

function fileLayer(name: string, content: string): Promise<Layer> {
  const e: Entry[] = [
    {
      path: name,
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: 0,
      size: content.length,
      open: () => Readable.from([Buffer.from(content)]),
    },
  ];
  return writeLayer(blobs, e, {});
}

test(
  'ensure: one snapshot per layer, bottom first, per-layer (not flattened); second call unpacks ' + 'nothing',
  async () => {
    const layers = [await fileLayer('one', '1'), await fileLayer('two', '2')];
    const snaps = new Snapshots(p('s1'), blobs, p('tmp1'));
    const got = await snaps.ensure(layers);
    assert.equal(
      got.map((s) => s.chainID),
      chainIDs(layers.map((l) => l.diffID)),
    );
    assert.equal(readdirSync(got[0]!.path), ['one']);
    assert.equal(readdirSync(got[1]!.path), ['two']);
    assert.is(snaps.stats.unpacked, 2);
    await snaps.ensure(layers);
    assert.is(snaps.stats.unpacked, 2);
    assert.equal((await snaps.list()).map((s) => s.chainID).sort(), got.map((s) => s.chainID).sort());
    assert.equal(readdirSync(p('tmp1')), []);
  },
);

test('ensure: a corrupt or hostile layer leaves neither a snapshot nor a temp dir', async () => {
  const good = await fileLayer('x', 'x');
  const cases: { name: string; layer: Layer; code: string }[] = [
    { name: 'wrong diffID', layer: { ...good, diffID: d('e') }, code: 'corrupt' },
    {
      name: 'hostile',
      layer: await writeLayer(
        blobs,
        [{ path: 'a', type: 'char', mode: 0o600, uid: 0, gid: 0, mtime: 0, devmajor: 1, devminor: 1 }],
        {},
      ),
      code: 'hostile-layer',
    },
  ];
  for (const c of cases) {
    const snaps = new Snapshots(p('s2'), blobs, p('tmp2'));
    try {
      await snaps.ensure([c.layer]);
      assert.unreachable(c.name);
    } catch (e) {
      assert.ok(e instanceof StoreError, c.name);
      assert.is((e as StoreError).code, c.code, c.name);
    }
    assert.equal(await snaps.list(), [], c.name);
    assert.equal(readdirSync(p('tmp2')), [], c.name);
  }
});

test('ensure from two processes at once: both succeed, each layer unpacked once', async () => {
  const layers = [await fileLayer('big', 'y'.repeat(8 << 20)), await fileLayer('small', 's')];
  const script = p('child.mjs');
  const dist = join(fileURLToPath(import.meta.url), '..');
  writeFileSync(
    script,
    `
    import { Snapshots } from '${join(dist, '../src/snapshot/index.js')}';
    import { TempBlobs } from '${join(dist, 'helpers/temp-blobs.js')}';
    const blobs = new TempBlobs(${JSON.stringify(p('blobs'))});
    const snaps = new Snapshots(${JSON.stringify(p('s3'))}, blobs, ${JSON.stringify(p('tmp3'))});
    const got = await snaps.ensure(${JSON.stringify(layers)});
    console.log(JSON.stringify({ unpacked: snaps.stats.unpacked, n: got.length }));
  `,
  );
  const run = () =>
    new Promise<{ unpacked: number; n: number }>((resolve, reject) => {
      const c = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (b) => {
        out += b;
      });
      c.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited ${code}`))));
    });
  const rs = await Promise.all([run(), run(), run()]);
  assert.equal(
    rs.map((r) => r.n),
    [2, 2, 2],
  );
  assert.is(
    rs.reduce((a, r) => a + r.unpacked, 0),
    2,
  );
  assert.equal(readdirSync(p('s3')).filter((n) => !n.endsWith('.boot')).length, 2, 'two snapshots, no lock files left');
  assert.equal(readdirSync(p('s3')).filter((n) => n.endsWith('.boot')).length, 2, 'each with its boot sidecar');
});

test('adopt moves a dir in; adopting again drops the new dir; remove; cleanup of dead temp dirs', async () => {
  const snaps = new Snapshots(p('s4'), blobs, p('tmp4'));
  const id = d('c');
  for (const n of ['u1', 'u2']) {
    mkdirSync(p(n));
    writeFileSync(p(n, 'f'), n);
  }
  const s = await snaps.adopt(id, p('u1'));
  assert.equal(readdirSync(s.path), ['f']);
  assert.not.ok(existsSync(p('u1')));
  await snaps.adopt(id, p('u2'));
  assert.not.ok(existsSync(p('u2')), 'the duplicate upperdir is dropped');
  assert.ok(await snaps.get(id));
  await snaps.remove(id);
  assert.is(await snaps.get(id), undefined);
  await snaps.remove(id); // removing twice is fine

  mkdirSync(p('tmp4', 'unpack-abcdef0123456789-999999999-00000000'), { recursive: true });
  mkdirSync(p('tmp4', `unpack-abcdef0123456789-${process.pid}-00000000`), { recursive: true });
  assert.is(await snaps.cleanup(), 1, "only the dead process's temp dir");
});

// A lock file left in snapshots/ by an earlier process. Its holder counts as alive only while its
// pid runs with the recorded start time: a crashed holder's pid may since belong to someone else.
const lockCases: { name: string; holder: (live: number) => object; broken: boolean }[] = [
  { name: 'holder is dead', holder: () => ({ pid: 999_999_999, start: '1', created: 0 }), broken: true },
  {
    name: 'holder crashed, its pid now runs another process',
    holder: (live) => ({ pid: live, start: '1', created: 0 }),
    broken: true,
  },
  { name: 'holder alive', holder: (live) => ({ pid: live, start: procStart(live), created: 0 }), broken: false },
];

function procStart(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

lockCases.forEach((c, i) => {
  test(`snapshot lock: ${c.name}`, async () => {
    const layer = await fileLayer(`locked${i}`, 'l');
    const snaps = new Snapshots(p(`s5-${i}`), blobs, p(`tmp5-${i}`));
    mkdirSync(p(`s5-${i}`));
    const lock = snaps.pathOf(chainIDs([layer.diffID])[0]!) + '.lock';
    const other = spawn('sleep', ['60'], { stdio: 'ignore' }); // a live process that is not the holder
    try {
      writeFileSync(lock, JSON.stringify(c.holder(other.pid!)));
      const ensured = snaps.ensure([layer]);
      if (!c.broken) {
        // The waiter sees the live holder's lock many times over (it polls every few ms), then
        // proceeds once the holder lets go.
        const waiting = new Promise((r) => setTimeout(r, 500, 'waiting'));
        const first = await Promise.race([ensured.then(() => 'done'), waiting]);
        assert.is(first, 'waiting', "a live holder's lock was broken");
        assert.ok(existsSync(lock));
        rmSync(lock);
      }
      // A hang here (a stale lock judged live) fails the test on uvu's side only after a long
      // time: bound it, and say which it was.
      const got = await Promise.race([ensured, new Promise((r) => setTimeout(r, 20_000, 'hung'))]);
      assert.ok(got !== 'hung', 'ensure waited on a stale lock');
      assert.is(snaps.stats.unpacked, 1);
      assert.not.ok(existsSync(lock), 'lock released');
    } finally {
      other.kill();
    }
  });
});

test.after(() => {
  rmSync(work, { recursive: true, force: true });
});

test(
  'a snapshot written in another boot (or with no sidecar) is dropped and unpacked again from its ' + 'blob',
  async () => {
    const layers = [await fileLayer('again', 'content of the layer')];
    for (const [name, sidecar] of [
      ['old-boot', 'some-other-boot-id'],
      ['no-sidecar', null],
      ['torn-sidecar', ''],
    ] as const) {
      const snaps = new Snapshots(p(`s-${name}`), blobs, p(`tmp-${name}`));
      const [first] = await snaps.ensure(layers);
      assert.is(snaps.stats.unpacked, 1);
      // What a power loss can leave: the snapshot's files torn, its sidecar from the boot that ended.
      writeFileSync(join(first!.path, 'again'), 'torn');
      if (sidecar === null) rmSync(`${first!.path}.boot`);
      else writeFileSync(`${first!.path}.boot`, sidecar);
      const [second] = await snaps.ensure(layers);
      assert.is(snaps.stats.unpacked, 2, `${name}: unpacked again`);
      assert.is(readFileSync(join(second!.path, 'again'), 'utf8'), 'content of the layer', `${name}: whole again`);
      // Written in this boot: trusted as it is, not unpacked a third time.
      await snaps.ensure(layers);
      assert.is(snaps.stats.unpacked, 2, `${name}: kept within the boot`);
    }
  },
);

test('a stale snapshot is dropped only while still stale, not once another process unpacked it anew', async () => {
  const layers = [await fileLayer('fresh', 'whole')];
  const snaps = new Snapshots(p('s-race'), blobs, p('tmp-race'));
  const [snap] = await snaps.ensure(layers);
  const boot = readFileSync(`${snap!.path}.boot`, 'utf8');
  writeFileSync(`${snap!.path}.boot`, 'some-other-boot-id');
  // Right after this process has judged the snapshot stale, another one (which held its lock) drops
  // it and unpacks it anew: what it leaves is a snapshot of this boot, in use by that process.
  const judged = snaps as unknown as { writtenThisBoot(path: string): boolean };
  const writtenThisBoot = judged.writtenThisBoot.bind(snaps);
  let raced = false;
  judged.writtenThisBoot = (path: string) => {
    const fresh = writtenThisBoot(path);
    if (!fresh && !raced) {
      raced = true;
      renameSync(path, p('tmp-race', 'dropped-by-the-other'));
      mkdirSync(path);
      writeFileSync(join(path, 'fresh'), 'whole');
      writeFileSync(`${path}.boot`, boot);
    }
    return fresh;
  };
  const got = await snaps.get(snap!.chainID);
  assert.ok(raced);
  assert.ok(existsSync(join(snap!.path, 'fresh')), 'the snapshot the other process unpacked is still there');
  assert.is(got?.path, snap!.path, 'and it is found');
});

test.run();
