// What a user sees at the terminal when a command fails on bad input: tsbuild's own one-line error and a
// non-zero exit, never Node's noise (a stack trace, an "Unhandled 'error' event", a warning).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Base, cleanup, context, ok, storeWithBase, tempDirs, tsbuild, tsbuildAsync } from './helpers/cli.js';

const { temp, dirs } = tempDirs();
const root = storeWithBase(temp('store'));
const work = temp('work');
const missing = join(work, 'no-such-dir', 'image.tar');
const underFile = join(work, 'a-file', 'image.tar');
writeFileSync(join(work, 'a-file'), '');
const app = context({ Dockerfile: `FROM ${Base}\n` });
dirs.push(app);
test.after(() => cleanup(...dirs));

/** Node's own output: a stack frame, its unhandled-error banner, a process warning, its version footer. */
const nodeNoise = /^\s+at |node:[a-z_/]+:\d+|Unhandled 'error'|\(node:\d+\)|Warning:|^Node\.js v|\[object Object\]/m;

const failures: { name: string; args: string[]; code: number; error: RegExp }[] = [
  {
    name: 'load -i of a file that is not there',
    args: ['load', '-i', join(work, 'missing.tar')],
    code: 1,
    error: /^ERROR: load: .*missing\.tar/,
  },
  {
    name: 'load -i of a directory',
    args: ['load', '-i', work],
    code: 1,
    error: /^ERROR: \S+: is a directory, not an archive/,
  },
  // ps takes --format json only; any other format was ignored and the default table printed.
  { name: 'ps --format TEMPLATE', args: ['ps', '-a', '--format', '{{.Names}}'], code: 2, error: /^ERROR: --format: / },
  // buildx's `-o -` is a tar on stdout; tsbuild made a directory named "-" in the working directory instead.
  // `-o -` and an archive's dest=- now write to stdout, as buildx does (test/outputs.test.ts); a directory's cannot.
  ...['type=local,dest=-', 'type=oci,tar=false,dest=-', 'type=docker,tar=false,dest=-'].map((spec) => ({
    name: `build -o ${spec} (a directory cannot be stdout)`,
    args: ['build', '-q', '-o', spec, app],
    code: 2,
    error: new RegExp(`^ERROR: --output ${spec.replace(/[-=,]/g, '\\$&')}: `),
  })),
  // The archive is written to a temp file beside FILE first; the error named that file, not the user's.
  ...(
    [
      ['save -o FILE', missing, ['save', '-o', missing, Base]],
      ['save -o FILE (under a file)', underFile, ['save', '-o', underFile, Base]],
      ['build -o type=docker,dest=FILE', missing, ['build', '-q', '-o', `type=docker,dest=${missing}`, app]],
      ['build -o type=oci-archive,dest=FILE', missing, ['build', '-q', '-o', `type=oci-archive,dest=${missing}`, app]],
    ] as const
  ).map(([what, file, args]) => ({
    name: `${what} in a directory that is not there`,
    args: [...args],
    code: 1,
    error: new RegExp(`^ERROR: .*${file}: no such directory\\n$`),
  })),
];

for (const c of failures) {
  test(`${c.name}: one error line, exit ${c.code}, nothing from Node`, () => {
    const r = tsbuild(c.args, { root, cwd: work });
    assert.is(r.code, c.code, r.stderr);
    assert.match(r.stderr, c.error);
    assert.not.match(r.stderr, nodeNoise, r.stderr);
    assert.is(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    assert.not.ok(existsSync(join(work, '-')), 'no file or directory named "-" made');
  });
}

// docker's listing commands read `\t` and `\n` in --format as a tab and a newline (its own documented example is
// `table {{.Repository}}\t{{.Tag}}`, typed in single quotes): tsbuild printed the backslash and the letter.
const listings: { name: string; args: string[]; out: RegExp }[] = [
  {
    name: "images --format 'table {{.Repository}}\\t{{.Tag}}': aligned columns under a header",
    args: ['images', '--format', 'table {{.Repository}}\\t{{.Tag}}'],
    out: /^REPOSITORY {3,}TAG\ntsbuild\/busybox {3,}1\n$/,
  },
  {
    name: "images --format '{{.Repository}}\\t{{.Tag}}': a tab",
    args: ['images', '--format', '{{.Repository}}\\t{{.Tag}}'],
    out: /^tsbuild\/busybox\t1\n$/,
  },
  {
    name: "history --format '{{.Size}}\\n': a newline",
    args: ['history', '--format', '{{.Size}}\\n', Base],
    out: /^(\S+\n\n)+$/,
  },
];

for (const c of listings) {
  test(c.name, () => {
    const r = tsbuild(c.args, { root, cwd: work });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, c.out);
  });
}

// docker logs -f ends on Ctrl-C; tsbuild said "interrupted, stopping..." and went on following until the container
// ended (its 120 s sleep bounds the wait of a logs -f that does not stop).
test('Ctrl-C of logs -f: it ends while the container goes on running', async () => {
  const id = ok(tsbuild(['run', '-d', Base, 'sh', '-c', 'echo ready; exec sleep 120'], { root })).stdout.trim();
  try {
    const child = tsbuildAsync(['logs', '-f', id], { root });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const ready = new Promise<void>((r) =>
      child.stdout.setEncoding('utf8').on('data', (b: string) => {
        stdout += b;
        if (stdout.includes('ready')) r();
      }),
    );
    child.stderr.setEncoding('utf8').on('data', (b: string) => (stderr += b));
    await ready;
    child.kill('SIGINT');
    assert.is(await exited, 130, stderr);
    const running = ok(tsbuild(['inspect', '--format', '{{.State.Running}}', id], { root })).stdout;
    assert.is(running, 'true\n', 'logs -f ended before the container did');
    assert.not.match(stderr, nodeNoise, stderr);
  } finally {
    tsbuild(['rm', '-f', id], { root });
  }
});

test.run();
