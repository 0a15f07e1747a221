// The CLI's V8 code cache (packages/builder/bin/tsbuild.cjs): whatever state the cache file is in,
// the command works; a missing, stale, damaged or refused cache is written anew after the command,
// and an accepted one is left alone. Run on a copy of the built CLI, so the real cache is untouched.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { have, skip } from '@tsbuild/testkit';
import { cleanup, repo, tempDir } from './helpers/cli.js';

const pkg = join(repo, 'packages', 'builder');
const copy = tempDir('code-cache');
mkdirSync(join(copy, 'bin'));
mkdirSync(join(copy, 'dist'));
copyFileSync(join(pkg, 'bin', 'tsbuild.cjs'), join(copy, 'bin', 'tsbuild.cjs'));
copyFileSync(join(pkg, 'dist', 'tsbuild.cjs'), join(copy, 'dist', 'tsbuild.cjs'));
symlinkSync(join(pkg, 'node_modules'), join(copy, 'node_modules'));
symlinkSync(join(pkg, 'package.json'), join(copy, 'package.json'));
const cacheFile = join(copy, 'dist', 'tsbuild.cjs.v8cache');
const source = readFileSync(join(copy, 'dist', 'tsbuild.cjs'));
const digest = createHash('sha256').update(source).digest();

function run(nodeFlags: string[] = [], args = ['parse', '-f', '-'], wrap: string[] = []) {
  const argv = [...wrap, process.execPath, ...nodeFlags, join(copy, 'bin', 'tsbuild.cjs'), ...args];
  const r = spawnSync(argv[0], argv.slice(1), { input: 'FROM scratch\nENV A=1\n', encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const works = (r: ReturnType<typeof run>) => {
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stderr, '');
  assert.match(r.stdout, /ENV/);
};
/** A cache as the loader writes it, made by running once without one. */
function freshCache(): Buffer {
  writeFileSync(cacheFile, '');
  works(run());
  return readFileSync(cacheFile);
}

const cases: { name: string; prepare: () => void; flags?: string[]; rewritten: boolean }[] = [
  { name: 'missing', prepare: () => cleanup(cacheFile), rewritten: true },
  { name: 'empty', prepare: () => writeFileSync(cacheFile, ''), rewritten: true },
  {
    name: 'for another bundle (other digest, other file)',
    prepare: () => {
      const c = freshCache();
      c[0] ^= 0xff;
      c[33] ^= 0xff; // the bundle file's identity (inode) the loader recorded
      writeFileSync(cacheFile, c);
    },
    rewritten: true,
  },
  {
    name: 'right digest, other file (a copy of the bundle)',
    prepare: () => {
      const c = freshCache();
      c[33] ^= 0xff;
      writeFileSync(cacheFile, c);
    },
    rewritten: false,
  },
  {
    name: 'right digest, damaged payload',
    prepare: () => {
      const c = freshCache();
      c.fill(0x5a, 40);
      writeFileSync(cacheFile, c);
    },
    rewritten: true,
  },
  {
    name: 'right digest, payload cut short',
    prepare: () => writeFileSync(cacheFile, freshCache().subarray(0, 200)),
    rewritten: true,
  },
  // V8 refuses a cache made with other flags (as it does one from another Node version).
  {
    name: 'made with other V8 flags',
    prepare: () => {
      freshCache();
    },
    flags: ['--no-opt'],
    rewritten: true,
  },
  {
    name: 'valid',
    prepare: () => {
      freshCache();
    },
    rewritten: false,
  },
];

for (const c of cases) {
  test(`code cache ${c.name}: the command works; the cache is ${c.rewritten ? 'written anew' : 'left alone'}`, () => {
    c.prepare();
    const before = existsSync(cacheFile) ? readFileSync(cacheFile) : undefined;
    const mtime = existsSync(cacheFile) ? statSync(cacheFile).mtimeMs : 0;
    works(run(c.flags));
    const after = readFileSync(cacheFile);
    assert.ok(after.subarray(0, 32).equals(digest), 'the cache names its bundle');
    if (c.rewritten) assert.ok(!before || !after.equals(before) || statSync(cacheFile).mtimeMs !== mtime, 'rewritten');
    else assert.is(statSync(cacheFile).mtimeMs, mtime, 'not rewritten');
    // And the cache now written is accepted: the next run leaves it alone.
    const m2 = statSync(cacheFile).mtimeMs;
    works(run(c.flags));
    assert.is(statSync(cacheFile).mtimeMs, m2, 'accepted on the next run');
  });
}

// The loader trusts the cache's record of the bundle file (inode, size, mtime, ctime) instead of hashing it again.
// A bundle rewritten in place to the same length keeps its inode and size, and V8 checks only a source's length:
// a cache taken for it would run the old code. Here the version string changes: the command must print the new one.
test('a bundle rewritten in place, same length: the cache is not taken for it, and is made anew', () => {
  const bundleFile = join(copy, 'dist', 'tsbuild.cjs');
  const version = () => run([], ['--version']);
  freshCache();
  assert.is(version().stdout, 'tsbuild 0.1.0\n');
  const m = statSync(cacheFile).mtimeMs;
  assert.is(version().stdout, 'tsbuild 0.1.0\n');
  assert.is(statSync(cacheFile).mtimeMs, m, 'the cache is accepted before the change');
  const text = readFileSync(bundleFile, 'latin1');
  assert.ok(text.includes('"tsbuild 0.1.0\\n"'), 'the bundle prints its version from this literal');
  const ino = statSync(bundleFile).ino;
  const ctime = statSync(bundleFile, { bigint: true }).ctimeNs;
  // ctime ticks with the kernel's clock: write until it has moved (a real rebuild comes much later).
  do writeFileSync(bundleFile, text.replace('"tsbuild 0.1.0\\n"', '"tsbuild 0.1.9\\n"'), 'latin1');
  while (statSync(bundleFile, { bigint: true }).ctimeNs === ctime);
  assert.is(statSync(bundleFile).ino, ino, 'same file, same size');
  try {
    const r = version();
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'tsbuild 0.1.9\n');
    assert.is.not(statSync(cacheFile).mtimeMs, m, 'written anew');
    assert.is(version().stdout, 'tsbuild 0.1.9\n');
  } finally {
    writeFileSync(bundleFile, source);
    freshCache();
  }
});

/** `tsbuild images` run from the copy's loader on store `root`: its output (the run must succeed). */
function imagesOut(root: string, readOnly = false): string {
  const argv = [process.execPath, join(copy, 'bin', 'tsbuild.cjs'), 'images'];
  const r = spawnSync(...split([...(readOnly ? roWrap() : []), ...argv]), {
    env: { ...process.env, TSBUILD_ROOT: root },
    encoding: 'utf8',
  });
  assert.is(r.status, 0, r.stderr);
  return r.stdout;
}

const split = (argv: string[]): [string, string[]] => [argv[0], argv.slice(1)];

/**
 * The command prefix that runs a command with dist/ read-only, as a read-only install has it: a read-only bind mount in
 * a mount namespace of the command's own (gone when it exits). Permission bits would not do: root ignores them, and
 * anyone else runs the CLI as root of a user namespace of their own (bin/tsbuild.cjs), who may write their files; so
 * for anyone but root the namespace is made in a user namespace (--map-root-user), as root of which the CLI runs.
 */
function roWrap(): string[] {
  const bindRo = 'mount --bind -o ro "$0" "$0" && exec "$@"';
  const userns = process.getuid?.() === 0 ? [] : ['--user', '--map-root-user'];
  return ['unshare', ...userns, '--mount', '--propagation', 'private', 'sh', '-c', bindRo, join(copy, 'dist')];
}

test('a short command (images) has a cache of its own, made by its first run; the shared one untouched', () => {
  const root = tempDir('code-cache-images');
  const own = join(copy, 'dist', 'tsbuild.cjs.images.v8cache');
  const images = () => assert.match(imagesOut(root), /^REPOSITORY/);
  freshCache();
  const shared = { bytes: readFileSync(cacheFile), mtime: statSync(cacheFile).mtimeMs };
  cleanup(own);
  images();
  assert.ok(readFileSync(own).subarray(0, 32).equals(digest), 'made by the first run, naming its bundle');
  const m = statSync(own).mtimeMs;
  images();
  assert.is(statSync(own).mtimeMs, m, 'accepted by the next');
  // Damaged after its header: V8 refuses it, the command works, and the cache is made anew.
  const damaged = readFileSync(own);
  damaged.fill(0x5a, 80);
  writeFileSync(own, damaged);
  images();
  assert.not.equal(readFileSync(own), damaged, 'made anew');
  assert.equal(
    { bytes: readFileSync(cacheFile), mtime: statSync(cacheFile).mtimeMs },
    shared,
    'shared cache untouched',
  );
  cleanup(own, root);
});

// Which cache a short command without one of its own compiles with is seen from its output: the shared cache is
// made from a bundle whose `images` header says REPOSITORX (same length; V8 checks only the length) and then
// labelled as the real bundle's, so a run that takes it prints REPOSITORX, one that compiles from source
// REPOSITORY. Where it can write its own cache it compiles from source, so that its own holds only what it ran (a
// cache made after the shared one was taken would carry all of the shared one's functions as well); a read-only
// install or a rootless user, who cannot write it, keeps the shared one's compiled code.
test('a short command without its own cache compiles from source and writes one; read-only: the shared one', () => {
  if (!have('unshare')) return skip('unshare (util-linux) is not installed');
  const root = tempDir('code-cache-fallback');
  const bundleFile = join(copy, 'dist', 'tsbuild.cjs');
  const own = join(copy, 'dist', 'tsbuild.cjs.images.v8cache');
  const header = (readOnly = false) => imagesOut(root, readOnly).split(/\s+/)[0];
  const text = source.toString('latin1');
  const marker = '[["REPOSITORY", "TAG"';
  assert.ok(text.includes(marker), 'the images table header is in the bundle');
  try {
    writeFileSync(bundleFile, text.replace(marker, '[["REPOSITORX", "TAG"'), 'latin1');
    cleanup(own);
    assert.is(header(), 'REPOSITORX');
    const poisoned = readFileSync(own);
    writeFileSync(bundleFile, source);
    cleanup(own);
    // Labelled as the real bundle's: its digest, and the file's identity as a fresh cache records it.
    const label = freshCache().subarray(0, 65);
    writeFileSync(cacheFile, Buffer.concat([label, poisoned.subarray(65)]));
    assert.is(header(true), 'REPOSITORX', 'read-only: compiled with the shared cache');
    assert.not.ok(existsSync(own), 'read-only: no cache of its own written');
    assert.is(header(), 'REPOSITORY', 'writable: compiled from source, not with the shared cache');
    assert.ok(existsSync(own), 'its own cache written');
    assert.is(header(), 'REPOSITORY', 'and then taken');
  } finally {
    writeFileSync(bundleFile, source);
    cleanup(own, root);
    freshCache();
  }
});

test('a cache another command made is made again by the first build, and then kept', () => {
  const ctx = tempDir('code-cache-ctx');
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nENV A=1\n');
  const root = tempDir('code-cache-store');
  const build = () => {
    const r = spawnSync(process.execPath, [join(copy, 'bin', 'tsbuild.cjs'), 'build', '--progress=plain', '-q', ctx], {
      env: { ...process.env, TSBUILD_ROOT: root, CI: 'true' },
      encoding: 'utf8',
    });
    assert.is(r.status, 0, r.stderr);
  };
  const made = () => ({ byBuild: readFileSync(cacheFile)[32], mtime: statSync(cacheFile).mtimeMs });
  freshCache(); // by `parse`
  assert.is(made().byBuild, 0);
  const before = made();
  build();
  assert.is(made().byBuild, 1, 'made again by the build');
  assert.is.not(made().mtime, before.mtime);
  const built = made();
  build();
  works(run());
  assert.equal(made(), built, 'then kept, by builds and other commands alike');
  cleanup(ctx, root);
});

// The loader is not built (bin/): after a `git pull` it may be newer than the bundle until `pnpm run build`. A bundle
// without the atomic write the loader writes its cache with: the command's outcome stands (its output, exit 0,
// nothing on stderr), and no cache is written.
test('a bundle older than the loader (no writeFileAtomic): the command works, no cache, nothing printed', () => {
  const bundleFile = join(copy, 'dist', 'tsbuild.cjs');
  const text = source.toString('latin1');
  const exported = 'writeFileAtomic: () => writeFileAtomic';
  assert.ok(text.includes(exported), 'the bundle exports the atomic write');
  try {
    writeFileSync(bundleFile, text.replace(exported, 'writeFileAtomiX: () => writeFileAtomic'), 'latin1');
    cleanup(cacheFile);
    works(run());
    assert.not.ok(existsSync(cacheFile), 'no cache written');
  } finally {
    writeFileSync(bundleFile, source);
    freshCache();
  }
});

test('a read-only install runs from source and writes nothing', () => {
  if (!have('unshare')) return skip('unshare (util-linux) is not installed');
  cleanup(cacheFile);
  const dist = join(copy, 'dist');
  works(run([], undefined, roWrap()));
  assert.not.ok(existsSync(cacheFile), 'no cache written');
  assert.equal(readdirSync(dist).sort(), ['tsbuild.cjs'], 'no temp file left either');
  // The same command where dist/ is writable does write it: the check above can fail.
  works(run());
  assert.ok(existsSync(cacheFile));
});

test('without a bundle: a clear error, no stack trace', () => {
  const bare = tempDir('code-cache-bare');
  mkdirSync(join(bare, 'bin'));
  copyFileSync(join(copy, 'bin', 'tsbuild.cjs'), join(bare, 'bin', 'tsbuild.cjs'));
  const r2 = spawnSync(process.execPath, [join(bare, 'bin', 'tsbuild.cjs'), '--version'], { encoding: 'utf8' });
  assert.is(r2.status, 1);
  assert.match(r2.stderr, /tsbuild is not built .*run 'pnpm run build'/);
  assert.not.match(r2.stderr, /\n\s+at /);
  cleanup(bare);
});

test.after(() => cleanup(copy));
test.run();
