'use strict';
// Runs the bundled CLI (dist/tsbuild.cjs) through V8's code cache (dist/tsbuild.cjs.v8cache, made
// by `pnpm run build`): compiling the bundle from source was a third of a cached rebuild.
// The cache starts with the SHA-256 of the source it was made from, a byte that says whether a
// build made it, and the bundle file's identity when the cache was written (inode, size, mtime and
// ctime, to the nanosecond): while the file still has that identity its bytes are the ones hashed,
// so the hash is not computed again (1 ms, and loading node:crypto 2 ms, of a 30 ms `--version`);
// any write to the file changes its ctime, and then the bytes are hashed and compared as before.
// V8 itself refuses a cache made by another Node version or with other flags. A missing,
// stale or refused cache only costs the compile, and is written anew after the command. An accepted
// cache is rewritten only once, by a build, if another command made it: V8 keeps the functions
// compiled by the time the cache is made, and a cached rebuild is the start that matters.
// The short commands run over and over (a repeated pull or push: 40 ms, all of it start-up) have a cache each
// (dist/tsbuild.cjs.COMMAND.v8cache), made by their first run: the build's holds little of their code and
// much they do not run (a repeated pull: 3 ms of CPU less with its own). That first run compiles from source,
// not with the shared cache: a cache holds every function that was compiled when it is made, so one made after
// the shared cache was taken held all of that too (a repeated pull's: 704 KB, 3.1 ms to load, against 378 KB and
// 1.9 ms). Where the command cannot write its own (a read-only install, a rootless user) it takes the shared one.
const { accessSync, closeSync, constants: fsConstants, fstatSync, openSync, readFileSync } = require('node:fs');
const createHash = (algorithm) => require('node:crypto').createHash(algorithm);
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

const early = startWalk(process.argv.slice(2));
const bundle = join(__dirname, '..', 'dist', 'tsbuild.cjs');
const ownCache = new Set(['pull', 'push', 'run', 'images', 'inspect', 'ps', 'exec', 'logs', 'tag', 'rmi']);
const sharedCache = `${bundle}.v8cache`;
const cacheFile = ownCache.has(process.argv[2]) ? `${bundle}.${process.argv[2]}.v8cache` : sharedCache;

let bytes;
let identity;
try {
  const fd = openSync(bundle, 'r');
  try {
    // The identity before and after the read: equal, so no write came between (a rebuild in place).
    const before = fileIdentity(fd);
    bytes = readFileSync(fd);
    identity = fileIdentity(fd);
    if (!identity.equals(before)) identity = undefined;
  } finally {
    closeSync(fd);
  }
} catch (e) {
  process.stderr.write(
    `ERROR: tsbuild is not built (${bundle}: ${e.code ?? e.message}); run 'pnpm run build' in ` +
      `${join(__dirname, '..', '..', '..')}\n`,
  );
  process.exit(1);
}
let digest; // the bundle's SHA-256, computed only when the cache cannot vouch for it
const bundleDigest = () => (digest ??= createHash('sha256').update(bytes).digest());
const source = bytes.toString('latin1'); // ASCII, checked when bundled: no UTF-8 decoding needed
const head = 32 + 1 + 32;
let cachedData;
let madeByBuild = false;
let cacheRead; // the file cachedData came from
// A short command without its own cache yet compiles from source, and then writes its own (see the header); where it
// cannot be written (a read-only install, rootless), it compiles with the shared one.
const writable = (dir) => {
  try {
    accessSync(dir, fsConstants.W_OK);
    return true;
  } catch {
    return false;
  }
};
// Looked at once: a command that cannot write a cache (read-only, rootless) does not make one either (8-30 ms).
const canWrite = writable(dirname(bundle));
const candidates = cacheFile === sharedCache ? [sharedCache] : canWrite ? [cacheFile] : [cacheFile, sharedCache];
for (const f of candidates) {
  try {
    const file = readFileSync(f);
    if (file.length > head) {
      const known = identity !== undefined && file.subarray(33, head).equals(identity);
      if (known || file.subarray(0, 32).equals(bundleDigest())) {
        if (known) digest = Buffer.from(file.subarray(0, 32));
        madeByBuild = file[32] === 1;
        cachedData = file.subarray(head);
        cacheRead = f;
        break;
      }
    }
  } catch {}
}

// The bundle is already wrapped as Node wraps a CommonJS module (scripts/bundle.mjs).
const script = new Script(source, {
  filename: bundle,
  cachedData,
});
const mod = { exports: {} };
script.runInThisContext()(mod.exports, createRequire(bundle), mod, bundle, dirname(bundle));
const argv = process.argv.slice(2);
const build = mod.exports.isBuild(argv);
const stale =
  cachedData === undefined || script.cachedDataRejected === true || cacheRead !== cacheFile || (build && !madeByBuild);
// Old space may grow to 1.5 times what a full GC found live before the next one, not the up to 4 times V8 picks
// by itself: a large build's short-lived objects are partly promoted, and RSS followed the heap's growth (a cold
// build of 200,000 context files: ~400 MB against ~500, the same CPU time; bench/RESULTS.md, issue 17). Set
// after the code cache is read, and put back before one is written: V8 refuses a cache made under other flags.
// The flags set are named in the global below: the build adds to them (src/context/young.ts), and layerstore's
// hashing thread sets them again once its isolate is up (a new isolate puts some back for the whole process).
// For a build only (and a commit, which walks and packs a container's changes as a build's RUN step does: of
// 60,000 files, ~280 MB at its peak without the flag, ~225 with it), and once its modules are loaded (main's
// `loaded`): while a flag differs from its default, V8 also refuses the code cache Node's own modules are compiled
// from, so each built-in loaded afterwards (node:crypto, node:zlib, node:net, node:worker_threads…) is compiled
// from source: 5 ms of CPU of a repeated `tsbuild pull` (45 ms) or of a tiny no-op build (bench/RESULTS.md,
// "CLI start-up for pull and push").
const setBuildFlags = () => {
  const flags = '--heap-growing-percent=50';
  globalThis[Symbol.for('tsbuild.v8-flags')] = flags;
  require('node:v8').setFlagsFromString(flags);
};

const packs = mod.exports.packsTrees(argv);
mod.exports.main(argv, early, packs ? setBuildFlags : undefined).then(
  (code) => {
    process.exitCode = code;
    // After the command, so that the cache holds the functions it compiled on the way.
    if (stale && canWrite) return writeCache();
  },
  (e) => {
    // main() turns every error into a message; this is for one that escapes it, still without a stack trace.
    process.stderr.write(`ERROR: ${e && e.message ? e.message : e}\n`);
    process.exitCode = 1;
  },
);

/** The file's inode, size, mtime and ctime (ns), 32 bytes: what a cache records of the bundle it was made from. */
function fileIdentity(fd) {
  const st = fstatSync(fd, { bigint: true });
  const b = Buffer.alloc(32);
  [st.ino, st.size, st.mtimeNs, st.ctimeNs].forEach((v, i) => b.writeBigUInt64LE(BigInt.asUintN(64, v), i * 8));
  return b;
}

function writeCache() {
  // Whatever happens here, the command's outcome stands: a cache that is not written costs a compile next time.
  try {
    // A build's flags back to V8's defaults (the commands that pack no trees set none).
    if (packs) require('node:v8').setFlagsFromString('--heap-growing-percent=0 --semi-space-growth-factor=2');
    const data = Buffer.concat([
      bundleDigest(),
      Buffer.from([build ? 1 : 0]),
      identity ?? Buffer.alloc(32), // none (a write during the read): hashed next time
      script.createCachedData(),
    ]);
    // The project's one atomic write (sys's writeFileAtomic), durable: V8 checks no checksum, and takes a cache with
    // a sound header and a damaged payload and crashes on it, at every start from then on; a temp file of its own
    // (two CLIs writing at once may have the same pid, in two pid namespaces sharing the install). A bundle older
    // than this loader (not rebuilt yet) has no writeFileAtomic: no cache then.
    return Promise.resolve(mod.exports.writeFileAtomic(cacheFile, data, { durable: true })).catch(() => {});
  } catch {
    return undefined;
  }
}

/**
 * A cached rebuild of a large context waits for its walk (tsbuild-walk), and the bundle takes ~18 ms to load:
 * for a plain `tsbuild build [FLAGS] DIR` the walk starts here, before it, spawned as the build would
 * (src/context/walk.ts: spawnWalker). It is a guess, on a reading of the command line that gives up on
 * anything it does not know: the build takes it only if it is exactly the walk it would start (the context,
 * the Dockerfile, the store's stat caches, the .dockerignore text, the walker and its arguments: sameWalk in
 * src/context/early.ts), else kills it; main() kills one no build took. Only for a context whose last
 * listing was large (the stat cache's head, as StatCache.sizeHint reads it) and has no .dockerignore (the
 * walk's --prune arguments come from its patterns).
 */
function startWalk(argv) {
  if (argv[0] !== 'build') return undefined;
  const valued = new Set(['-t', '--tag', '-f', '--file', '--root', '-o', '--output', '--iidfile', '--build-arg']);
  for (const f of ['--target', '--label', '--progress']) valued.add(f);
  const bools = new Set(['-q', '--quiet', '--no-cache', '--pull']);
  const given = new Map();
  let context;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (bools.has(a)) continue;
    if (valued.has(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      const key = name === '-f' ? '--file' : name;
      if (v === undefined || given.has(key)) return undefined;
      given.set(key, v);
    } else if (a.startsWith('-') || context !== undefined || a.includes('://') || a.startsWith('git@')) {
      return undefined; // a flag it does not know, stdin (-), a second argument, a URL: the build alone
    } else context = a;
  }
  const file = given.get('--file');
  if (context === undefined || file === '' || file === '-') return undefined;
  const { resolve } = require('node:path');
  const dir = resolve(context);
  const dockerfile = file !== undefined ? resolve(file) : join(dir, 'Dockerfile');
  const root = given.get('--root') || process.env.TSBUILD_ROOT;
  const statCacheDir = join(root ? resolve(root) : '/var/lib/tsbuild', 'builder', 'statcache');
  const walker = join(__dirname, '..', 'native', 'build', 'tsbuild-walk');
  let out;
  let err;
  try {
    const head = Buffer.alloc(16);
    const name = createHash('sha256').update(dir).digest('hex').slice(0, 32) + '.v5';
    const fd = openSync(join(statCacheDir, name), 'r');
    try {
      require('node:fs').readSync(fd, head, 0, 16, 0);
    } finally {
      closeSync(fd);
    }
    if (head.toString('latin1', 0, 8) !== 'TSBSC5\0\0' || head.readUInt32LE(8) <= 150) return undefined;
    // Looked at, not read: a context's .dockerignore may be a FIFO or a symlink to /dev/zero (the build
    // refuses the symlink). The first one there is the one in force; only an empty file is understood.
    for (const f of [`${dockerfile}.dockerignore`, join(dir, '.dockerignore')]) {
      const st = require('node:fs').lstatSync(f, { throwIfNoEntry: false });
      if (st === undefined) continue;
      if (!st.isFile() || st.size > 0) return undefined;
      break;
    }
    const unnamed = 0o20000000 | fsConstants.O_DIRECTORY | fsConstants.O_RDWR; // O_TMPFILE, as walk.ts
    out = openSync(require('node:os').tmpdir(), unnamed, 0o600);
    err = openSync(require('node:os').tmpdir(), unnamed, 0o600);
    const child = require('node:child_process').spawn(walker, [dir], { stdio: ['ignore', out, err] });
    const ended = new Promise((done) => {
      child.on('error', (error) => {
        if (child.pid === undefined) done({ code: null, signal: null, error });
        else child.once('close', () => done({ code: null, signal: null, error }));
      });
      child.on('close', (code, signal) => done({ code, signal }));
    });
    const spawned = { child, out, err, chunks: [], errChunks: [], ended };
    return { dir, dockerfile, statCacheDir, ignore: '', walker, args: [dir], spawned };
  } catch {
    // No stat cache, no O_TMPFILE, no walker: the build lists the context itself.
    for (const fd of [out, err]) if (fd !== undefined) closeSync(fd);
    return undefined;
  }
}
