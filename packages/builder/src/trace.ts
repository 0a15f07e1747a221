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

/**
 * For tests only: with TSBUILD_TEST_BUILD_STOP=POINT the build stops itself (SIGSTOP) there, so that a test acts at
 * exactly that point, then kills it or lets it go on (SIGCONT). Points: 'tag' (test/interrupt.test.ts: the layers,
 * the cache records and the image written, the snapshots adopted, no tag yet); 'context-read' (test/hostile-context-
 * swap.test.ts: a COPY/ADD or RUN --mount step whose context sources are listed and hashed, before it reads them);
 * 'layer-written' (each layer's bytes in its temp file, not yet synced and renamed) and 'image-write' (every layer in
 * the store, the image's config and manifest about to be written), both test/interrupt.test.ts's Ctrl-C before the tag.
 */
export function testStop(point: string): void {
  if (process.env.TSBUILD_TEST_BUILD_STOP === point) process.kill(process.pid, 'SIGSTOP');
}
