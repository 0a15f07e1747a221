'use strict';
// Runs the bundled CLI (dist/tsbuild.cjs) through V8's code cache (dist/tsbuild.cjs.v8cache, made
// by `pnpm run build`): compiling the bundle from source was a third of a cached rebuild.
// The cache starts with the SHA-256 of the source it was made from and a byte that says whether a
// build made it; V8 itself refuses one made by another Node version or with other flags. A missing,
// stale or refused cache only costs the compile, and is written anew after the command. An accepted
// cache is rewritten only once, by a build, if another command made it: V8 keeps the functions
// compiled by the time the cache is made, and a cached rebuild is the start that matters.
const { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const { Script } = require('node:vm');

// Rootless when started as `node .../bin/tsbuild.js` by a user: the `tsbuild` command (bin/tsbuild)
// executes node in a user namespace itself; here the CLI runs again in one, made by the sandbox's
// launcher (`tsbuild-launcher userns`), and this process only passes on its exit and signals (the
// terminal's Ctrl-C reaches both processes already).
if (process.getuid && process.getuid() !== 0) {
  const { spawn } = require('node:child_process');
  const sandbox = dirname(
    createRequire(join(__dirname, '..', 'package.json')).resolve('@tsbuild/sandbox/package.json'),
  );
  const launcher = process.env.TSBUILD_LAUNCHER || join(sandbox, 'native', 'build', 'tsbuild-launcher');
  const child = spawn(launcher, ['userns', process.execPath, __filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  process.on('SIGINT', () => {});
  child.on('error', (e) => {
    process.stderr.write(`ERROR: cannot start ${launcher}: ${e.message}\n`);
    process.exit(125);
  });
  child.on('exit', (code, sig) => process.exit(code ?? 128 + (require('node:os').constants.signals[sig] || 9)));
  return;
}

const bundle = join(__dirname, '..', 'dist', 'tsbuild.cjs');
const cacheFile = `${bundle}.v8cache`;

let bytes;
try {
  bytes = readFileSync(bundle);
} catch (e) {
  process.stderr.write(
    `ERROR: tsbuild is not built (${bundle}: ${e.code ?? e.message}); run 'pnpm run build' in ` +
      `${join(__dirname, '..', '..', '..')}\n`,
  );
  process.exit(1);
}
const digest = createHash('sha256').update(bytes).digest();
const source = bytes.toString('latin1'); // ASCII, checked when bundled: no UTF-8 decoding needed
const head = digest.length + 1;
let cachedData;
let madeByBuild = false;
try {
  const file = readFileSync(cacheFile);
  if (file.length > head && file.subarray(0, digest.length).equals(digest)) {
    madeByBuild = file[digest.length] === 1;
    cachedData = file.subarray(head);
  }
} catch {}

// The bundle is already wrapped as Node wraps a CommonJS module (scripts/bundle.mjs).
const script = new Script(source, {
  filename: bundle,
  cachedData,
});
const mod = { exports: {} };
script.runInThisContext()(mod.exports, createRequire(bundle), mod, bundle, dirname(bundle));
const argv = process.argv.slice(2);
const build = mod.exports.isBuild(argv);
const stale = cachedData === undefined || script.cachedDataRejected === true || (build && !madeByBuild);
// Old space may grow to 1.5 times what a full GC found live before the next one, not the up to 4 times V8 picks
// by itself: a large build's short-lived objects are partly promoted, and RSS followed the heap's growth (a cold
// build of 200,000 context files: ~400 MB against ~500, the same CPU time; bench/RESULTS.md, issue 17). Set
// after the code cache is read, and put back before one is written: V8 refuses a cache made under other flags.
const v8 = require('node:v8');
v8.setFlagsFromString('--heap-growing-percent=50');

mod.exports.main(argv).then(
  (code) => {
    process.exitCode = code;
    // After the command, so that the cache holds the functions it compiled on the way.
    if (stale) writeCache();
  },
  (e) => {
    // main() turns every error into a message; this is for one that escapes it, still without a stack trace.
    process.stderr.write(`ERROR: ${e && e.message ? e.message : e}\n`);
    process.exitCode = 1;
  },
);

function writeCache() {
  v8.setFlagsFromString('--heap-growing-percent=0');
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      writeSync(fd, digest);
      writeSync(fd, Buffer.from([build ? 1 : 0]));
      writeSync(fd, script.createCachedData());
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, cacheFile);
  } catch {
    // A read-only install keeps compiling from source; that is all it costs.
    try {
      unlinkSync(tmp);
    } catch {}
  }
}
