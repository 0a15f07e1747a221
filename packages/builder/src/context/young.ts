// V8 doubles the young generation's semi-spaces, up to 16 MiB each, while a program's short-lived objects partly
// survive: a cold walk and hash of a large context does that, and the 32 MB stayed committed for the rest of
// the build (a cold build of 200,000 context files: ~225 MiB at its peak, ~175 without; bench/RESULTS.md, "Memory
// at 200,000 files"). Kept at its first size (two 1 MiB semi-spaces) from a large cold walk on, it costs no CPU
// there that the runs could see; a no-op or one-change build, which reads and saves the stat cache, is left as it
// was (there the small young generation cost ~0.08 s of CPU at 200,000 files, and saved no memory).
//
// Only under the CLI's loader (bin/tsbuild.cjs), which names the V8 flags it set in the global below; V8 puts the
// growth factor back to 2 for the whole process each time it makes an isolate, so layerstore's hashing thread
// sets the flags named there again once its isolate is up. The loader resets the factor before it writes its
// code cache (V8 refuses a cache made under other flags).
import { setFlagsFromString } from 'node:v8';

const Flags = Symbol.for('tsbuild.v8-flags');
const Small = '--semi-space-growth-factor=1';

/** From now on, the young generation grows no more (see above). */
export function keepYoungGenerationSmall(): void {
  const g = globalThis as Record<symbol, unknown>;
  const flags = g[Flags];
  if (typeof flags !== 'string' || flags.includes(Small)) return;
  g[Flags] = `${flags} ${Small}`;
  setFlagsFromString(Small);
}

/** A walk of this many entries (or more) to read and hash is a large cold one. */
export const LargeWalk = 10_000;
