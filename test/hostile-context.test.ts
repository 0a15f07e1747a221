// Hostile build contexts whose control files are symlinks: a checkout may hold `Dockerfile` or
// `.dockerignore` as a link to any host path. tsbuild read them through the link, so a host file
// was printed in the parse error ("unknown instruction: <its first line>"), or used as ignore
// patterns (an oracle: a context file named like a line of the host file was left out). A link
// that resolves inside the context is followed; one that leads out of it is refused, naming the
// file. A Dockerfile named with -f outside the context is the user's choice and read as given.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { have, skip } from '@tsbuild/testkit';
import { Base, cleanup, command, context, ok, storeWithBase, tempDir, tsbuild, type FileSpec } from './helpers/cli.js';

const root = storeWithBase();
const Secret = 'HOST-SECRET-4711';
const copyAll = `FROM ${Base}\nCOPY . /x\nRUN ls /x\n`;

interface Row {
  name: string;
  /** Context files; H in a symlink target is the scratch host dir. */
  files: Record<string, FileSpec>;
  /** Extra build arguments (before the context); C is the context dir. */
  args?: string[];
  /** The error the build fails with, or undefined when it must succeed. */
  fails?: RegExp;
  /** What a successful build's output must show. */
  shows?: RegExp;
}

const rows: Row[] = [
  {
    name: 'a Dockerfile that links to a host file is refused, its content never shown',
    files: { Dockerfile: { symlink: 'H/secret' } },
    fails: /Dockerfile.*leads out of the build context/,
  },
  {
    name: 'a .dockerignore that links to a host file is refused (its lines would pick what is copied)',
    files: { Dockerfile: copyAll, '.dockerignore': { symlink: 'H/secret' }, [Secret]: 'ctx\n' },
    fails: /\.dockerignore.*leads out of the build context/,
  },
  {
    name: 'a <Dockerfile>.dockerignore that links to a host file is refused',
    files: { 'sub/Dockerfile': copyAll, 'sub/Dockerfile.dockerignore': { symlink: 'H/secret' }, [Secret]: 'ctx\n' },
    args: ['-f', 'C/sub/Dockerfile'],
    fails: /Dockerfile\.dockerignore.*leads out of the build context/,
  },
  {
    name: 'a Dockerfile and a .dockerignore that link inside the context are followed',
    files: {
      Dockerfile: { symlink: 'build/Dockerfile.real' },
      'build/Dockerfile.real': copyAll,
      '.dockerignore': { symlink: 'build/ignore' },
      'build/ignore': 'left-out\n',
      'left-out': 'x\n',
      kept: 'x\n',
    },
    shows: /kept/,
  },
];

for (const row of rows) {
  test(row.name, () => {
    const host = tempDir('host');
    writeFileSync(join(host, 'secret'), `${Secret}\n`, { mode: 0o600 });
    const files = Object.fromEntries(
      Object.entries(row.files).map(([k, v]) => [
        k,
        typeof v === 'object' && 'symlink' in v ? { symlink: v.symlink.replace(/^H\//, `${host}/`) } : v,
      ]),
    );
    // context() makes symlinks as given; a Dockerfile link is written after its target's dir exists.
    const ctx = context(
      Object.fromEntries(Object.entries(files).filter(([, v]) => !(typeof v === 'object' && 'symlink' in v))),
    );
    for (const [k, v] of Object.entries(files)) {
      if (typeof v === 'object' && 'symlink' in v) {
        mkdirSync(join(ctx, k, '..'), { recursive: true });
        symlinkSync(v.symlink, join(ctx, k));
      }
    }
    const args = (row.args ?? []).map((a) => a.replace(/^C\//, `${ctx}/`));
    const r = tsbuild(['build', '--progress=plain', '--no-cache', ...args, ctx], { root });
    const out = r.stdout + r.stderr;
    assert.not.match(out, /\n\s+at .+:\d+:\d+\)?\n/, `a stack trace:\n${r.stderr}`);
    if (row.fails) {
      assert.is.not(r.code, 0, `the build must fail:\n${out.slice(-2000)}`);
      assert.match(r.stderr, row.fails);
      assert.not.match(out, new RegExp(Secret), 'the host file was read');
    } else {
      ok(r);
      assert.match(out, row.shows!);
      assert.not.match(out, /left-out/, 'the linked .dockerignore was applied');
    }
    cleanup(ctx, host);
  });
}

// A control file that is a FIFO: reading it blocked the CLI for good (a blocked read lets no signal end it, not even
// the SIGTERM of `timeout`). Refused as not a regular file, naming it.
const fifoRows: [string, RegExp][] = [
  ['Dockerfile', /Dockerfile: not a regular file/],
  ['.dockerignore', /\.dockerignore: not a regular file/],
];
for (const [name, fails] of fifoRows) {
  test(`a ${name} that is a FIFO is refused, naming it (it hung the build)`, () => {
    const ctx = context({ Dockerfile: copyAll, kept: 'x\n' });
    rmSync(join(ctx, name), { force: true });
    execFileSync('mkfifo', [join(ctx, name)]);
    const r = tsbuild(['build', '--progress=plain', '--dry-run', ctx], { root });
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, fails);
    assert.not.match(r.stdout + r.stderr, /\n\s+at .+:\d+:\d+\)?\n/, `a stack trace:\n${r.stderr}`);
    cleanup(ctx);
  });
}

// A control file that is a device or a FIFO is refused without being opened: opening a device can act (a watchdog
// arms on open), and opening a FIFO wakes its writer. The CLI, traced (strace -f, each open* call that names the
// file), holds it only by an O_PATH fd (which opens nothing) before it refuses it; it opened it O_RDONLY before.
const neverOpened: [string, (path: string) => void][] = [
  ["a character device (/dev/null's numbers)", (p) => execFileSync('mknod', [p, 'c', '1', '3'])],
  ['a FIFO', (p) => execFileSync('mkfifo', [p])],
];
for (const [what, make] of neverOpened) {
  test(`a Dockerfile that is ${what} is refused without being opened`, () => {
    if (!have('strace')) return skip('strace is not installed');
    const ctx = context({ Dockerfile: copyAll, kept: 'x\n' });
    rmSync(join(ctx, 'Dockerfile'));
    make(join(ctx, 'Dockerfile'));
    const log = join(ctx, '..', `${ctx.split('/').pop()}.strace`);
    const trace = ['-f', '-qq', '-e', 'trace=open,openat,openat2', '-o', log];
    const r = spawnSync('strace', [...trace, command, 'build', '--progress=plain', '--dry-run', ctx], {
      env: { ...process.env, CI: 'true', TSBUILD_ROOT: root },
      encoding: 'utf8',
    });
    assert.is(r.status, 2, r.stderr);
    assert.match(r.stderr, /Dockerfile: not a regular file/);
    const opens = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => /Dockerfile"/.test(l) && !/ENOENT/.test(l));
    assert.ok(opens.length > 0, 'the trace shows the file being looked at');
    for (const l of opens) assert.match(l, /O_PATH/, `opened, not only held:\n${l}`);
    cleanup(ctx, log);
  });
}

// --explain names the npm package of a changed node_modules/ file from the context's lockfile: a lockfile that
// links to a host file was read through the link, and the host's package versions shown. It is read beneath
// the context as the Dockerfile is: a link out of the context is not followed (no package named).
test('--explain: a package-lock.json that links to a host lockfile is not read', () => {
  const host = tempDir('host');
  const lock = (version: string) =>
    JSON.stringify({
      name: 'app',
      version: '1.0.0',
      lockfileVersion: 3,
      requires: true,
      packages: {
        '': { name: 'app', version: '1.0.0', dependencies: { lodash: '*' } },
        'node_modules/lodash': { version },
      },
    });
  writeFileSync(join(host, 'package-lock.json'), lock('9.9.9-host-secret'));
  const ctx = context({
    Dockerfile: `FROM ${Base}\nCOPY node_modules/ /app/node_modules/\n`,
    'package.json': JSON.stringify({ name: 'app', version: '1.0.0', dependencies: { lodash: '*' } }),
    'node_modules/lodash/index.js': 'one\n',
  });
  symlinkSync(join(host, 'package-lock.json'), join(ctx, 'package-lock.json'));
  ok(tsbuild(['build', '-q', ctx], { root }));
  writeFileSync(join(ctx, 'node_modules', 'lodash', 'index.js'), 'two\n');
  const r = ok(tsbuild(['build', '--progress=plain', '--explain', ctx], { root }));
  assert.match(r.stderr, /miss: file node_modules\/lodash\/index\.js changed/);
  assert.not.match(r.stdout + r.stderr, /host-secret/, 'the host lockfile was read');
  cleanup(ctx, host);
});

test.after(() => cleanup(root));
test.run();
