// Makes dist/tsbuild.cjs.v8cache, the V8 code cache bin/tsbuild.cjs loads the bundle with.
// V8 caches the functions compiled by the time the cache is made, so it is made at the end of a
// real command: a fully cached rebuild in a scratch store, the path whose start-up matters most.
// Anything else a command needs is compiled on first use, as without a cache. If this training
// build fails, the cache is made from `tsbuild --version` instead, and a line says so.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(pkg, 'bin', 'tsbuild.cjs');
const cacheFile = join(pkg, 'dist', 'tsbuild.cjs.v8cache');
const work = mkdtempSync(join(tmpdir(), 'tsbuild-code-cache-'));
const env = { ...process.env, TSBUILD_ROOT: join(work, 'store'), CI: 'true' };
delete env.TSBUILD_TRACE;

const files = {
  'hello.txt': 'hello\n',
  'lib/a.js': 'export const a = 1;\n',
  'lib/b.js': 'export const b = 2;\n',
  'Dockerfile.base': 'FROM scratch\nCOPY hello.txt /etc/\n',
  // The instructions of a typical cached rebuild. No RUN: its first build would need the sandbox
  // (root, the C launcher) at build time; a RUN's key code is compiled on first use instead.
  Dockerfile: [
    'ARG BASE=tsbuild-code-cache/base',
    'FROM ${BASE}',
    'WORKDIR /app',
    'ENV MODE=train GREETING="hi there"',
    'ADD hello.txt /app/',
    'COPY lib/ ./lib/',
    'LABEL purpose=training',
    'EXPOSE 8080',
    'ENTRYPOINT ["/bin/sh", "-c"]',
    'CMD ["cat /app/hello.txt"]',
    '',
  ].join('\n'),
};
for (const [rel, text] of Object.entries(files)) {
  mkdirSync(dirname(join(work, 'ctx', rel)), { recursive: true });
  writeFileSync(join(work, 'ctx', rel), text);
}

const run = (args) => spawnSync(process.execPath, [cli, ...args], { env, encoding: 'utf8' });
const ctx = join(work, 'ctx');
const steps = [
  ['build', '--progress=plain', '-t', 'tsbuild-code-cache/base', '-f', join(ctx, 'Dockerfile.base'), ctx],
  ['build', '--progress=plain', '-t', 'tsbuild-code-cache/app', ctx],
];
try {
  let failed;
  for (const args of steps) {
    const r = run(args);
    if (r.status !== 0) {
      failed = r.stderr.trim().split('\n').pop();
      break;
    }
  }
  rmSync(cacheFile, { force: true });
  // The short commands' own caches (dist/tsbuild.cjs.COMMAND.v8cache) were made for the bundle before:
  // each is made again by the command's first run.
  for (const f of readdirSync(dirname(cacheFile)))
    if (/^tsbuild\.cjs\.[a-z]+\.v8cache$/.test(f)) rmSync(join(dirname(cacheFile), f), { force: true });
  // Without a cache, the CLI writes one as it exits: here after the no-op rebuild.
  const r = run(failed ? ['--version'] : steps[1]);
  if (r.status !== 0) throw new Error(`tsbuild exited ${r.status}: ${r.stderr}`);
  if (failed) console.log(`code-cache: the training build failed (${failed}); made the cache from --version`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
