// Progress as a person sees it: on a terminal, spinners with marks, durations and CACHED
// (through a real pty from script(1)); plain numbered lines when not a terminal, under CI, or
// on a pty that has no size.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Base, bin, cleanup, context, storeWithBase, tempDir } from './helpers/cli.js';

const root = storeWithBase();
const ctx = context({ Dockerfile: `FROM ${Base}\nRUN echo first line && echo second line\nCOPY Dockerfile /df\n` });

/** Runs tsbuild on a pty of the given width; returns what the terminal received, escapes removed. */
function onTerminal(
  cols: number,
  env: Record<string, string | undefined> = {},
  flags = '',
): { code: number; screen: string; bytes: number } {
  const log = join(tempDir('tty'), 'typescript');
  const cmd =
    `${cols ? `stty cols ${cols} rows 30; ` : ''}TSBUILD_ROOT=${root} ${process.execPath} ${bin} build ` +
    `${flags}-t tty:1 ${ctx}`;
  const r = spawnSync('script', ['-qec', cmd, log], {
    env: { ...process.env, CI: undefined, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 60_000,
  });
  const raw = readFileSync(log, 'utf8');
  return {
    code: r.status ?? -1,
    bytes: raw.length,
    screen: raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '\n'),
  };
}

test('a terminal gets spinners, marks and durations, then CACHED on a rebuild', () => {
  const first = onTerminal(100);
  assert.is(first.code, 0, first.screen);
  assert.match(first.screen, /✔ \[\d+\] \[stage-0 2\/3\] RUN echo first line && echo second line \d+\.\ds/);
  assert.ok(first.bytes < 200_000, `bounded redraws (${first.bytes} bytes)`);
  const again = onTerminal(100);
  assert.match(again.screen, /≡ \[\d+\] \[stage-0 2\/3\] RUN .* CACHED/);
});

test('a pty without a size, and CI=true, fall back to plain lines', () => {
  assert.match(onTerminal(0).screen, /^#\d+ \[stage-0 2\/3\] RUN/m);
  assert.match(onTerminal(100, { CI: 'true' }).screen, /^#\d+ CACHED/m);
});

// ora counts the lines it must clear as each line's width over the terminal's columns: over 0 columns, Infinity,
// and the build never ended, redrawing forever (tens of MB a second; here the 60 s guard above ended it).
test('--progress=tty on a pty without a size: the build ends, drawn as on an 80-column terminal', () => {
  const r = onTerminal(0, {}, '--progress=tty ');
  assert.is(r.code, 0, `exit ${r.code} after ${r.bytes} bytes`);
  assert.match(r.screen, /[✔≡] \[\d+\] \[stage-0 2\/3\] RUN echo first line && echo second line/);
  assert.ok(r.bytes < 200_000, `bounded redraws (${r.bytes} bytes)`);
});

test.after(() => cleanup(root, ctx));
test.run();
