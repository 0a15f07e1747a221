// TSBUILD_TRACE=1: where a build's (or a push's) wall-clock time goes, phase by phase, on stderr, in milliseconds
// since the process started (so Node's own start and loading the CLI show as the first figure).
// TSBUILD_TRACE=mem adds the process's resident set and V8's heap in use at each line (MiB), to find what a
// large context holds.
// process.uptime, not performance.now(): that global loads perf_hooks, a millisecond of every start.
const on = !!process.env.TSBUILD_TRACE;
const mem = process.env.TSBUILD_TRACE === 'mem';

/** Whether trace() prints: a line whose text costs work to make is made only then. */
export const tracing = on;

export function trace(what: string): void {
  if (!on) return;
  let m = '';
  if (mem) {
    const u = process.memoryUsage();
    const mib = (n: number) => (n / 1048576).toFixed(0).padStart(4);
    m = ` rss ${mib(u.rss)} heap ${mib(u.heapUsed)}/${mib(u.heapTotal)} ext ${mib(u.external)}`;
  }
  process.stderr.write(`[trace ${(process.uptime() * 1000).toFixed(0).padStart(5)}ms${m}] ${what}\n`);
}
