// dist/src/cli/main.js and everything it imports → dist/tsbuild.cjs, the one file the CLI runs.
// CommonJS, not ESM: only a classic script can be compiled through V8's code cache on Node 20
// (bin/tsbuild.cjs), and that cache is what makes a start cheap. import.meta.url is the bundle's
// own URL, as it was for the ESM bundle, so createRequire() still resolves from packages/builder.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

// Node built-ins that a cached rebuild never calls but whose modules import them at their top:
// they are replaced by an object of getters that loads the real module on first use.
// child_process (with net and dgram) was 4 ms of every build's start; zlib, worker_threads (layerstore's
// hashing thread) and v8 are loaded by every command that opens the store, and needed by few (a repeated pull
// or push: none of them).
const lazyBuiltins = ['node:child_process', 'node:zlib', 'node:worker_threads', 'node:v8'];
const lazyBuiltinsPlugin = {
  name: 'lazy-builtins',
  setup(b) {
    const filter = new RegExp(`^(${lazyBuiltins.join('|')})$`);
    b.onResolve({ filter }, (a) =>
      a.namespace === 'lazy-builtin' ? { path: a.path, external: true } : { path: a.path, namespace: 'lazy-builtin' },
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (a) => {
      const names = Object.keys(createRequire(import.meta.url)(a.path));
      const get = names.map(
        (n) =>
          `Object.defineProperty(exports, ${JSON.stringify(n)}, { enumerable: true, get: () => ` +
          `load()[${JSON.stringify(n)}] });`,
      );
      return {
        loader: 'js',
        contents: `let real;\nconst load = () => (real ??= require(${JSON.stringify(a.path)}));\n${get.join('\n')}\n`,
      };
    });
  },
};

const shim = 'dist/bundle-url-shim.mjs';
writeFileSync(shim, 'export const __tsbuildBundleURL = require("node:url").pathToFileURL(__filename).href;\n');

await build({
  entryPoints: ['dist/src/cli/main.js'],
  outfile: 'dist/tsbuild.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
  // Native code, or loaded only by the commands that need them. ora (ES modules only) is bundled,
  // and initialised only when a terminal asks for it: an import() of it would fail, see below.
  external: ['ffi-rs', 'ssri', 'tar-stream', 'dockerfile-ast', '@npmcli/arborist'],
  inject: [shim],
  define: { 'import.meta.url': '__tsbuildBundleURL' },
  // The file is the body of the function bin/tsbuild.cjs calls, wrapped already (as Node wraps a
  // CommonJS module) so that the loader compiles it without copying 600 kB; esbuild's "use strict"
  // opens the body. (Minifying saved under a millisecond; readable stack traces are worth more.)
  banner: { js: '(function (exports, require, module, __filename, __dirname) {' },
  footer: { js: '})' },
  charset: 'ascii',
  plugins: [lazyBuiltinsPlugin],
});

// ASCII throughout, so that the loader reads it as latin1 (a one-byte string, no UTF-8 decoding:
// non-ASCII text would make V8 hold all 600 kB as UTF-16). charset 'ascii' escapes strings, regexps
// and names; what is left can only be comments, whose characters are spelled out here.
const text = readFileSync('dist/tsbuild.cjs', 'utf8');
if (/[^\x00-\x7f]/.test(text))
  writeFileSync(
    'dist/tsbuild.cjs',
    text.replace(/[^\x00-\x7f]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`),
  );
const out = readFileSync('dist/tsbuild.cjs');
// A script compiled by vm.Script has no module loader behind import() on Node 20 ("A dynamic
// import callback was not specified"), so an import() left in the bundle would fail at run time.
const left = out.toString('latin1').match(/.{0,60}\bimport\(["'`].{0,60}/g);
if (left) {
  console.error(
    `bundle: dist/tsbuild.cjs keeps a dynamic import(), which fails under ` +
      `bin/tsbuild.cjs:\n${left.join('\n')}\nimport what it loads statically, bundle it, or require() it.`,
  );
  process.exit(1);
}
if (out.some((b) => b > 0x7f)) {
  console.error('bundle: dist/tsbuild.cjs is not ASCII, but bin/tsbuild.cjs reads it as latin1');
  process.exit(1);
}
