// One store, many writers at once, as on a shared CI host: N builds that share steps (and a stage
// read with COPY --from), a `prune --all --grace 0s` loop, and a push and a pull, for a few rounds.
// Nothing in use may be deleted: every build succeeds, every tag runs, `tsbuild check` finds
// nothing, and no lease is left behind. The second test SIGKILLs random builds mid-way; once the
// leases of the dead processes expire, the store is as clean.
// test-runner: long
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tempDir, tsbuild, tsbuildAsync, tsbuildP } from './helpers/cli.js';
import type { Result } from './helpers/cli.js';
import { startRegistry, type TestRegistry } from '@tsbuild/testkit';

const N = 6;
const ROUNDS = 3;
let reg: TestRegistry;
const dirs: string[] = [];

test.before(async () => {
  reg = await startRegistry();
});
test.after(async () => {
  await reg?.stop();
  cleanup(...dirs);
});

/** Builds i of round r: shared first steps and stage, then a step of its own. */
function dockerfile(r: number, i: number): string {
  return [
    `FROM ${Base} AS tools`,
    'RUN echo tool > /tool && mkdir -p /opt && echo lib > /opt/lib',
    `FROM ${Base}`,
    'RUN echo shared > /shared',
    'COPY common.txt /common.txt',
    'COPY --from=tools /opt/ /opt/',
    `RUN echo "round ${r} build ${i}" > /mine`,
    '',
  ].join('\n');
}

function leases(root: string): string[] {
  const dir = join(root, 'leases');
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** Leases prune found expired (their owner was gone), from its report. */
function expiredLeases(r: Result): number {
  return Number(/, (\d+) expired leases/.exec(r.stdout)?.[1] ?? 0);
}

/** Runs `prune --all --grace 0s` back to back until stop() (each run must succeed). */
function pruneLoop(root: string) {
  let stopped = false;
  let runs = 0;
  let expired = 0;
  const failures: Result[] = [];
  const done = (async () => {
    while (!stopped) {
      const r = await tsbuildP(['prune', '--all', '--grace', '0s'], { root });
      runs++;
      expired += expiredLeases(r);
      if (r.code !== 0) failures.push(r);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await done;
      return { runs, failures, expired };
    },
  };
}

/** The image a tag names runs and shows what its build wrote. */
function assertRuns(root: string, tag: string, r: number, i: number): void {
  const cat = ['run', '--rm', tag, 'cat', '/mine', '/shared', '/common.txt', '/opt/lib'];
  const out = ok(tsbuild(cat, { root }), `run ${tag}`).stdout;
  assert.is(out, `round ${r} build ${i}\nshared\ncommon\nlib\n`, tag);
}

function assertCheckClean(root: string): void {
  const r = tsbuild(['check'], { root });
  assert.is(r.code, 0, `tsbuild check found problems:\n${r.stdout}\n${r.stderr}`);
}

async function setup(name: string) {
  const root = storeWithBase(tempDir(`conc-${name}`));
  const ctx = context({ 'common.txt': 'common\n' });
  dirs.push(root, ctx);
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < N; i++) writeFileSync(join(ctx, `Dockerfile.${r}.${i}`), dockerfile(r, i));
  }
  // The image pushed and pulled during the rounds.
  const remote = `${reg.host}/conc-${name}:base`;
  ok(tsbuild(['tag', Base, remote], { root }));
  ok(tsbuild(['push', remote], { root }));
  return { root, ctx, remote };
}

test(`${N} builds sharing steps + prune --all --grace 0s loop + push + pull: nothing in use is lost`, async () => {
  const { root, ctx, remote } = await setup('a');
  for (let r = 0; r < ROUNDS; r++) {
    // Drop the pulled tag so that prune takes nothing but the blobs the base shares with it.
    tsbuild(['rmi', remote], { root });
    const loop = pruneLoop(root);
    const build = (i: number) => ['build', '-q', '-f', join(ctx, `Dockerfile.${r}.${i}`), '-t', `conc:${r}-${i}`, ctx];
    const builds = Array.from({ length: N }, (_, i) => tsbuildP(build(i), { root }));
    const transfers = [tsbuildP(['pull', '-q', remote], { root }), pushLatest(root, r)];
    const results = await Promise.all([...builds, ...transfers]);
    const { runs, failures, expired } = await loop.stop();
    results.forEach((res, k) => ok(res, k < N ? `build ${r}-${k}` : k === N ? 'pull' : 'push'));
    assert.is(failures.length, 0, failures.map((f) => f.stderr).join('\n'));
    assert.ok(runs > 0);
    assert.is(expired, 0, 'a process that ends drops its lease: none is left to expire');
    for (let i = 0; i < N; i++) assertRuns(root, `conc:${r}-${i}`, r, i);
  }
  // One more prune after everything: what the tags need stays.
  ok(tsbuild(['prune', '--all', '--grace', '0s'], { root }));
  for (let r = 0; r < ROUNDS; r++) for (let i = 0; i < N; i++) assertRuns(root, `conc:${r}-${i}`, r, i);
  assertCheckClean(root);
  assert.equal(leases(root), [], 'no lease remains');
});

/** Pushes the image a previous round built (or the base in round 0) under a registry name. */
async function pushLatest(root: string, r: number): Promise<Result> {
  const src = r === 0 ? Base : `conc:${r - 1}-0`;
  const dest = `${reg.host}/conc-pushed:${r}`;
  const t = await tsbuildP(['tag', src, dest], { root });
  if (t.code !== 0) return t;
  return tsbuildP(['push', '-q', dest], { root });
}

test('SIGKILL of random builds during the prune loop: once their leases expire, check is clean', async () => {
  const { root, ctx } = await setup('b');
  let killed = 0;
  let expired = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const loop = pruneLoop(root);
    // Build 0 always survives; one other build is always killed, the rest one in two, at random.
    const always = 1 + Math.floor(Math.random() * (N - 1));
    const all = Array.from({ length: N }, (_, i) => i);
    const victims = new Set(all.filter((i) => i === always || (i > 0 && Math.random() < 0.5)));
    const builds = Array.from({ length: N }, (_, i) => {
      const args = ['build', '--progress=plain', '-f', join(ctx, `Dockerfile.${r}.${i}`), '-t', `kill:${r}-${i}`, ctx];
      const child = tsbuildAsync(args, { root });
      let err = '';
      child.stdout.resume();
      child.stderr.on('data', (b: Buffer) => {
        err += b;
        // Deterministic point: the build has started its steps (and holds content in its lease).
        if (victims.has(i) && /\[\S+ 2\/\d\]/.test(err) && child.exitCode === null && !child.killed) {
          child.kill('SIGKILL');
        }
      });
      return new Promise<{ i: number; code: number | null; err: string }>((resolve) => {
        child.on('close', (code) => resolve({ i, code, err }));
      });
    });
    const results = await Promise.all(builds);
    const loopResult = await loop.stop();
    const failures = loopResult.failures;
    expired += loopResult.expired;
    assert.is(failures.length, 0, failures.map((f) => f.stderr).join('\n'));
    for (const res of results) {
      if (victims.has(res.i) && res.code === null) {
        killed++; // died of the signal (a victim that had just finished exited 0 instead)
        continue;
      }
      // A victim may finish before its kill point shows up in its output: it must then have succeeded.
      assert.is(res.code, 0, `build ${r}-${res.i}:\n${res.err}`);
      assertRuns(root, `kill:${r}-${res.i}`, r, res.i);
    }
  }
  assert.ok(killed >= 1, `no build was killed`);
  // The dead builds' leases expire at the next prune (or check); then the store is clean.
  expired += expiredLeases(ok(tsbuild(['prune', '--grace', '0s'], { root })));
  // Each killed build held exactly one lease (it had resolved its base image), each expired once.
  assert.is(expired, killed, 'every killed build left one lease, and it expired');
  assertCheckClean(root);
  assert.equal(leases(root), [], 'the leases of killed builds expired');
});

test.run();
