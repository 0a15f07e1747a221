// The test runner's host guard (scripts/host-guard.mjs) sees each kind of thing a test could leave on
// the host or take from it, and names it; a quiet run (while others use the machine) shows nothing.
// Its own guard runs compare machine-wide state (mounts in the sandbox state dir, cgroups): alone.
// test-runner: alone
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { have, skip } from '@tsbuild/testkit';
import { repo } from './helpers/cli.js';

interface Run {
  id: string;
  tmp: string;
  env: Record<string, string>;
}
interface Guard {
  prepare(): Run;
  snapshot(run: Run): unknown;
  compare(before: unknown, after: unknown): { problems: string[]; notes: string[] };
  finish(run: Run): string | undefined;
}
const guard = (): Promise<Guard> => import(pathToFileURL(join(repo, 'scripts', 'host-guard.mjs')).href);

const ip = (...args: string[]) => {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
};
const sh = (cmd: string, ...args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
};
const rand = () => randomBytes(3).toString('hex');

/** A tsbuild run cgroup's parent: <v1 pids hierarchy or the v2 root>/tsbuild. */
const cgroupParent = () =>
  existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup/tsbuild' : '/sys/fs/cgroup/pids/tsbuild';

interface Case {
  name: string;
  /** Before the first snapshot (what the machine had): returns nothing. */
  setup?: (run: Run) => void;
  /** Between the snapshots (what a test did); returns how to undo it. */
  act: (run: Run) => () => void;
  /** What at least one reported problem says (null: none may be reported); `also`: others allowed. */
  problem: RegExp | null;
  also?: RegExp;
}

const cases: Case[] = [
  { name: 'nothing done', act: () => () => {}, problem: null },
  {
    name: 'a bridge named after the run is left',
    act: (run) => {
      const name = `tsb${run.id}${rand().slice(0, 4)}`;
      ip('link', 'add', 'name', name, 'type', 'bridge');
      return () => ip('link', 'del', name);
    },
    problem: /^interface tsb\w+: a test bridge of this run was left$/,
  },
  (() => {
    const name = `hgb${rand()}`;
    return {
      name: 'an interface of the machine is deleted (what --bridge=none did to docker0)',
      setup: () => ip('link', 'add', 'name', name, 'type', 'bridge'),
      act: () => {
        ip('link', 'del', name);
        return () => {};
      },
      problem: new RegExp(`^interface ${name}: deleted during the run`),
    };
  })(),
  {
    name: "a mount under the run's temp dir is left",
    act: (run) => {
      const at = join(run.tmp, 'm');
      mkdirSync(at);
      sh('mount', '-t', 'tmpfs', 'guard-test', at);
      return () => sh('umount', at);
    },
    problem: /^mount \/.*\/m \(tmpfs guard-test\): left by this run$/,
  },
  {
    name: "a process carrying the run's tag is still running",
    act: (run) => {
      const p = spawn('sleep', ['600'], { env: { ...process.env, TSBUILD_TEST_RUN: run.id }, stdio: 'ignore' });
      return () => p.kill('SIGKILL');
    },
    problem: /^process \d+ \(sleep 600\): started by this run, still running$/,
  },
  {
    name: 'a tsbuild-* entry in /dev/shm is left',
    act: () => {
      const d = `/dev/shm/tsbuild-guard-test-${rand()}`;
      mkdirSync(d);
      return () => rmSync(d, { recursive: true });
    },
    problem: /^\/dev\/shm\/tsbuild-guard-test-\w+: left by a test$/,
  },
  {
    // Its owner is a live process of this run: with a dead owner, any tsbuild on the machine may sweep
    // the cgroup before the second snapshot (which is right, and would make this case flaky).
    name: "a sandbox run's cgroup whose owner belongs to the run is left",
    act: (run) => {
      const owner = spawn('sleep', ['600'], { env: { ...process.env, TSBUILD_TEST_RUN: run.id }, stdio: 'ignore' });
      const d = join(cgroupParent(), `${owner.pid}-1-${rand()}`);
      mkdirSync(d, { recursive: true });
      return () => {
        owner.kill('SIGKILL');
        rmdirSync(d);
      };
    },
    problem: /^cgroup \/sys\/fs\/cgroup\/.*tsbuild\/\d+-1-\w+: a sandbox run's cgroup was left$/,
    also: /^process \d+ \(sleep 600\): started by this run, still running$/,
  },
  (() => {
    // The owner was a process of this run and is a zombie now (ended, not reaped yet: an orphan's reaper may
    // take seconds): its tag can no longer be read, and it must not pass for someone else's live process.
    // A state directory of a uid no tsbuild here runs as, so that no sweep can take it between the snapshots.
    const parent = `/dev/shm/tsbuild-sandbox-${4_000_000_000 + randomBytes(2).readUInt16BE(0)}`;
    return {
      name: "a sandbox run's state directory whose owner of this run is now a zombie is left",
      act: (run: Run) => {
        // A child that ends once its shell has become `sleep` (so the shell cannot have reaped it): sleep
        // never does. The whole is in the background, so that spawnSync returns.
        const child = `sh -c 'until [ "$(cat /proc/$PPID/comm)" = sleep ]; do :; done'`;
        const r = spawnSync('sh', ['-c', `(${child} & echo $!; exec sleep 600 >/dev/null 2>&1 </dev/null) &`], {
          env: { ...process.env, TSBUILD_TEST_RUN: run.id },
          encoding: 'utf8',
        });
        const zombie = Number(r.stdout.trim());
        const d = join(parent, `${zombie}-1-${rand()}`);
        mkdirSync(d, { recursive: true });
        for (const end = Date.now() + 10_000; !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${zombie}/stat`, 'utf8'));)
          if (Date.now() > end) throw new Error(`process ${zombie} never became a zombie`);
        return () => {
          rmSync(parent, { recursive: true });
          const sleeper = Number(readFileSync(`/proc/${zombie}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
          process.kill(sleeper, 'SIGKILL');
        };
      },
      problem: /^\/dev\/shm\/tsbuild-sandbox-\d+\/\d+-1-\w+: a sandbox run's state directory was left$/,
      also: /^process \d+ \(sleep 600\): started by this run, still running$/,
    };
  })(),
];

for (const c of cases) {
  test(`host guard: ${c.name}`, async () => {
    if (process.getuid?.() !== 0 || !have('ip')) return skip('the host guard test needs root and iproute2');
    const g = await guard();
    const run = g.prepare();
    let undo = () => {};
    try {
      c.setup?.(run);
      const before = g.snapshot(run);
      undo = c.act(run);
      const { problems } = g.compare(before, g.snapshot(run));
      if (c.problem === null) assert.equal(problems, []);
      else {
        assert.ok(
          problems.some((p) => c.problem!.test(p)),
          `reported: ${problems.join('; ') || 'nothing'}`,
        );
        for (const p of problems) assert.ok(c.problem.test(p) || c.also?.test(p), `unexpected: ${p}`);
      }
    } finally {
      try {
        undo();
      } finally {
        assert.is(g.finish(run), undefined, 'the run dir is removed');
        assert.not.ok(existsSync(run.tmp));
      }
    }
  });
}

test.run();
