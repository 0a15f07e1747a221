#!/usr/bin/env node
// The CLI runs from one bundled file (dist/tsbuild.mjs, made by `pnpm run build`): loading
// dozens of small ES modules cost more than the rest of a cached rebuild.
const { main } = await import('../dist/tsbuild.mjs');
process.exitCode = await main(process.argv.slice(2));
