// A reader that closes its end early (`tsbuild images | head -1`): the command still ends with its
// own exit status and no stack trace. The pipe is closed before the child writes a byte, so every
// write it makes fails with EPIPE.
import { spawn } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Base, cleanup, command, context, repo, storeWithBase } from './helpers/cli.js';

const root = storeWithBase();
const ctx = context({
  Dockerfile: `FROM ${Base}\n${Array.from({ length: 200 }, (_, i) => `ENV V${i}=${i}`).join('\n')}\n`,
});

const cases: { name: string; args: string[]; code: number; closed: 'stdout' | 'stderr' | 'both' }[] = [
  { name: 'usage, stdout closed', args: ['--help'], code: 0, closed: 'stdout' },
  { name: 'images, stdout closed', args: ['images'], code: 0, closed: 'stdout' },
  { name: 'inspect, stdout closed', args: ['inspect', Base], code: 0, closed: 'stdout' },
  { name: 'parse of a long Dockerfile, stdout closed', args: ['parse', ctx], code: 0, closed: 'stdout' },
  { name: 'a failing command, stderr closed', args: ['inspect', 'no-such-image:1'], code: 1, closed: 'stderr' },
  { name: 'a build, both closed', args: ['build', '--progress=plain', ctx], code: 0, closed: 'both' },
];

function run(
  args: string[],
  closed: 'stdout' | 'stderr' | 'both',
): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: repo,
      env: { ...process.env, CI: 'true', TSBUILD_ROOT: root },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    if (closed !== 'stderr') child.stdout.destroy();
    if (closed !== 'stdout') child.stderr.destroy();
    else child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

for (const c of cases) {
  test(c.name, async () => {
    const r = await run(c.args, c.closed);
    assert.is(r.signal, null, 'not killed by a signal');
    assert.is(r.code, c.code, `exit code (stderr: ${r.stderr})`);
    assert.not.match(r.stderr, /EPIPE|\n\s+at .*:\d+:\d+/, 'no uncaught EPIPE, no stack trace');
  });
}

test.after(() => {
  cleanup(ctx);
  cleanup(root);
});
test.run();
