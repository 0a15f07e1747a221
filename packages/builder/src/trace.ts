// TSBUILD_TRACE=1: where a build's (or a push's) wall-clock time goes, phase by phase, on stderr, in milliseconds
// since the process started (so Node's own start and loading the CLI show as the first figure).
// process.uptime, not performance.now(): that global loads perf_hooks, a millisecond of every start.
const on = !!process.env.TSBUILD_TRACE;

export function trace(what: string): void {
  if (on) process.stderr.write(`[trace ${(process.uptime() * 1000).toFixed(0).padStart(5)}ms] ${what}\n`);
}
