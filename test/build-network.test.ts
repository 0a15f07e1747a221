// The build's private network (a holder process and slirp4netns) is started by the first RUN step that
// runs in it and ends with the build, however the build ends (the build tells the holder to end and does
// not wait for slirp4netns's exit: these rows wait, bounded, for it to be gone). A wrapper around
// slirp4netns logs each start and its pid.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { skip } from '@tsbuild/testkit';
import { Base, cleanup, context, storeWithBase, tempDirs, tsbuildP } from './helpers/cli.js';

const root = storeWithBase();
const { temp, dirs } = tempDirs();
test.after(() => cleanup(root, ...dirs));

const real = spawnSync('sh', ['-c', 'command -v slirp4netns'], { encoding: 'utf8' }).stdout.trim();

/** A slirp4netns that logs its pid (exec keeps it) to `log`, one line a start. */
function wrapper(): { path: string; pids: () => number[] } {
  const dir = temp('slirp-wrap');
  const log = join(dir, 'started');
  const path = join(dir, 'slirp4netns');
  // The launcher runs the helper with an empty environment: the wrapper names its log itself.
  writeFileSync(path, `#!/bin/sh\necho $$ >> '${log}'\nexec '${real}' "$@"\n`);
  chmodSync(path, 0o755);
  const pids = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).map(Number) : []);
  return { path, pids };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded, generously) for the helpers to be gone; returns those still running. */
async function leftOf(pids: number[]): Promise<number[]> {
  for (const end = Date.now() + 10000; pids.some(alive) && Date.now() < end;) await sleep(20);
  return pids.filter(alive);
}

interface Row {
  name: string;
  dockerfile: (tag: string) => string;
  args?: string[];
  /** Starts of slirp4netns expected in this build. */
  starts: number;
  /** The build's exit: 0, or non-zero (failed or interrupted). */
  fails?: boolean;
  /** Interrupt the build with SIGINT once its output shows this. */
  interruptAt?: string;
}

// A COPY that misses (new content each run) in front of the RUN steps.
const rows: Row[] = [
  {
    name: 'a build that fails before its default-network RUN step ran (never started)',
    dockerfile: (tag) => `FROM ${Base}\nCOPY a /a-${tag}\nRUN --network=none false\nRUN echo never\n`,
    starts: 0,
    fails: true,
  },
  {
    name: 'a build that fails in its default-network RUN step',
    dockerfile: (tag) => `FROM ${Base}\nCOPY a /a-${tag}\nRUN echo ${tag} && false\n`,
    starts: 1,
    fails: true,
  },
  {
    name: 'a build interrupted (SIGINT) in its default-network RUN step',
    dockerfile: (tag) => `FROM ${Base}\nCOPY a /a-${tag}\nRUN echo "in-""run" && sleep 300\n`,
    starts: 1,
    fails: true,
    interruptAt: 'in-run',
  },
  {
    name: 'a build whose default-network RUN step ran',
    dockerfile: (tag) => `FROM ${Base}\nCOPY a /a-${tag}\nRUN --network=none true\nRUN echo ${tag}\n`,
    starts: 1,
  },
  {
    name: 'RUN --network=host steps only (never started)',
    dockerfile: (tag) => `FROM ${Base}\nCOPY a /a-${tag}\nRUN --network=host echo ${tag}\n`,
    args: ['--allow', 'network.host'],
    starts: 0,
  },
  {
    name: '--network none for the whole build (never started)',
    dockerfile: (tag) => `FROM ${Base}\nCOPY a /a-${tag}\nRUN echo ${tag}\n`,
    args: ['--network', 'none'],
    starts: 0,
  },
];

for (const row of rows) {
  test(`build network: ${row.name}; nothing left running after the build`, async () => {
    if (!real) return skip('slirp4netns not installed');
    const w = wrapper();
    const tag = randomBytes(4).toString('hex');
    const ctx = context({ Dockerfile: row.dockerfile(tag), a: `${tag}\n` });
    dirs.push(ctx);
    let interrupted = false;
    const args = ['build', '--progress=plain', ...(row.args ?? []), ctx];
    const r = await tsbuildP(args, {
      root,
      env: { TSBUILD_SLIRP4NETNS: w.path },
      onStderr: (all, kill) => {
        if (!row.interruptAt || interrupted || !all.includes(row.interruptAt)) return;
        interrupted = true;
        // The step runs in the network: its helper has logged itself (waited for, bounded, in case not).
        void (async () => {
          for (const end = Date.now() + 10000; !w.pids().length && Date.now() < end;) await sleep(20);
          kill('SIGINT');
        })();
      },
    });
    if (row.fails) assert.is.not(r.code, 0, r.stderr);
    else assert.is(r.code, 0, r.stderr);
    if (row.interruptAt) assert.ok(interrupted, `never reached "${row.interruptAt}":\n${r.stderr}`);
    assert.is(w.pids().length, row.starts, `slirp4netns starts:\n${r.stderr}`);
    assert.equal(await leftOf(w.pids()), [], 'slirp4netns left running after the build ended');
  });
}

// A miss below a cached default-network RUN step starts nothing; a miss above it starts the network again.
test('build network: started again only when a default-network RUN step runs again', async () => {
  if (!real) return skip('slirp4netns not installed');
  const w = wrapper();
  const tag = randomBytes(4).toString('hex');
  const files = { Dockerfile: `FROM ${Base}\nCOPY a /a\nRUN cat /a > /b-${tag}\nCOPY c /c\n`, a: '1\n', c: '1\n' };
  const env = { TSBUILD_SLIRP4NETNS: w.path };
  const first = context(files);
  const belowRun = context({ ...files, c: '2\n' });
  const aboveRun = context({ ...files, a: '2\n' });
  dirs.push(first, belowRun, aboveRun);
  for (const [ctx, starts] of [
    [first, 1],
    [belowRun, 1],
    [aboveRun, 2],
  ] as const) {
    const r = await tsbuildP(['build', '--progress=plain', ctx], { root, env });
    assert.is(r.code, 0, r.stderr);
    assert.is(w.pids().length, starts, `slirp4netns starts after ${ctx}:\n${r.stderr}`);
  }
  assert.equal(await leftOf(w.pids()), [], 'slirp4netns left running');
});

test.run();
