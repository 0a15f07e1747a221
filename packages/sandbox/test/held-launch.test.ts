// A container's launcher forked by its network's holder (NetworkOptions.launcherStdio, launcher.c
// launch_container): what the run reports when the holder cannot fork it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { have, skip } from '@tsbuild/testkit';
import { startNetwork, type PrivateNetwork } from '../src/index.js';
import { sh, stateDir } from './helpers.js';

const ignored = { stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' } as const;

/** Settles with `p`, or fails once it has hung long enough to be a hang (not a timing assertion). */
function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung: ${what}`)), 30000);
  });
  return Promise.race([p, hung]).finally(() => clearTimeout(timer));
}

test('a holder that cannot fork the launcher: the run fails with the reason, it does not hang', async () => {
  if (!have('slirp4netns')) return skip('slirp4netns not installed');
  if (!have('prlimit')) return skip('prlimit (util-linux) not installed');
  const net: PrivateNetwork = await startNetwork({ stateDir, launcherStdio: ignored });
  try {
    // Every fd number the holder may use is taken: its pipe2() for the launcher's spec fails (EMFILE).
    const highest = Math.max(...readdirSync(`/proc/${net.pid}/fd`).map(Number));
    execFileSync('prlimit', [`--pid=${net.pid}`, `--nofile=${Math.min(highest, 5)}`]);
    const run = sh('echo never', {
      network: 'private',
      netns: net,
      newSession: true,
      stdout: undefined,
      stderr: undefined,
    });
    const e = await bounded(
      run.then(
        () => undefined,
        (x: Error) => x,
      ),
      'the run of a launcher the holder could not fork',
    );
    assert.ok(e, 'the run failed');
    assert.match(e!.message, /Too many open files/);
  } finally {
    await net.close();
  }
});

test.run();
