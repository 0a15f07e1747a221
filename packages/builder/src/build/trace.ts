// TSBUILD_TRACE=1: where a build's wall-clock time goes, phase by phase, on stderr.
const on = !!process.env.TSBUILD_TRACE;
const start = performance.now();

export function trace(what: string): void {
  if (on) process.stderr.write(`[trace ${(performance.now() - start).toFixed(0).padStart(5)}ms] ${what}\n`);
}
