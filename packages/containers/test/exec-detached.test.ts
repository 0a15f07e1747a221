// exec -d's helper (src/exec-detached.ts) starts a while after the CLI saw the container running. If the container
// ended meanwhile and its PID 1's pid went to another process (here: a plain host process), the helper must not
// enter that process's namespaces: it checks the pid's start time against the one the CLI saw.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processStart } from '@tsbuild/sys';
import type { DetachedRequest } from '../src/exec.js';

const helper = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'exec-detached.js');

/** Runs the helper with `request` on its stdin; resolves with its fd 3 line and exit code. */
function runHelper(request: DetachedRequest): Promise<{ said: string; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [helper], { stdio: ['pipe', 'ignore', 'inherit', 'pipe'] });
    let said = '';
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (b: Buffer) => (said += b.toString()));
    child.on('close', (code) => resolve({ said, code }));
    child.stdin!.end(JSON.stringify(request));
  });
}

test('a pid that is no longer the container: not entered, "container NAME is not running"', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'exec-detached-'));
  const marker = join(dir, 'ran');
  // A host process in the host's namespaces stands for the process that got the container's pid.
  const stand = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    const pid = stand.pid!;
    const spec = {
      pid,
      argv: ['/bin/sh', '-c', `touch ${marker}`],
      env: ['PATH=/usr/bin:/bin'],
      cwd: '/',
      uid: 0,
      gid: 0,
    };
    const real = processStart(pid);
    assert.ok(real, 'the stand-in runs');
    const { said, code } = await runHelper({ spec, pidStart: `${real}-not`, name: 'web' });
    assert.equal(JSON.parse(said), { running: false, error: 'container web is not running' });
    assert.is(code, 1);
    assert.not.ok(existsSync(marker), 'the command ran in the other process');
  } finally {
    stand.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
