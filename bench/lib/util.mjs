// Small helpers shared by the bench: processes, timing, statistics, /proc.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, rmSync, mkdirSync } from 'node:fs';

/** Runs a command; resolves { code, stdout, stderr, ms }. Rejects on a non-zero exit unless ok is set. */
export function sh(cmd, args, { env, cwd, ok = false, input, quiet = true } = {}) {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const c = spawn(cmd, args, {
      env: env ? { ...process.env, ...env } : process.env,
      cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out = [],
      err = [];
    c.stdout.on('data', (d) => {
      out.push(d);
      if (!quiet) process.stdout.write(d);
    });
    c.stderr.on('data', (d) => {
      err.push(d);
      if (!quiet) process.stderr.write(d);
    });
    c.on('error', reject);
    if (input !== undefined) c.stdin.end(input);
    else c.stdin.end();
    c.on('close', (code, signal) => {
      const r = {
        code: code ?? 128,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        ms: performance.now() - t,
      };
      if (r.code !== 0 && !ok) {
        const tail = (r.stderr + r.stdout).trim().split('\n').slice(-25).join('\n');
        reject(new Error(`${cmd} ${args.join(' ')}: exit ${r.code}${signal ? ` (${signal})` : ''}\n${tail}`));
      } else resolve(r);
    });
  });
}

/**
 * Runs under /usr/bin/time -f %M: resolves { ms, rssKB, ... } (rssKB = peak RSS of the largest process in the tree).
 */
export async function timed(cmd, args, opts = {}) {
  const f = `/tmp/tsb-bench-time-${process.pid}`;
  rmSync(f, { force: true });
  const r = await sh('/usr/bin/time', ['-f', '%M', '-o', f, cmd, ...args], opts);
  let rssKB = NaN;
  try {
    rssKB = Number(readFileSync(f, 'utf8').trim().split('\n').pop());
  } catch {}
  return { ...r, rssKB };
}

export const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export const min = (xs) => Math.min(...xs.filter(Number.isFinite));
export const max = (xs) => Math.max(...xs.filter(Number.isFinite));

/** Resets a process's peak-RSS counter (VmHWM) — Linux clear_refs "5". */
export function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {}
}
/** Peak RSS (VmHWM) of a live process, in KB. */
export function peakKB(pid) {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  } catch {
    return NaN;
  }
}
export function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export function fresh(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}
export function which(cmd) {
  return ['/usr/bin', '/usr/sbin', '/bin', '/sbin', '/usr/local/bin']
    .map((d) => `${d}/${cmd}`)
    .find((p) => existsSync(p));
}
export const fmtS = (ms) => (Number.isFinite(ms) ? (ms / 1000).toFixed(ms < 10000 ? 2 : 1) : '–');
export const fmtMB = (kb) => (Number.isFinite(kb) ? (kb / 1024).toFixed(0) : '–');

/**
 * The interleaved A/B experiments' arguments, `ROUNDS CTX LABEL=VALUE... [-- build flags]`:
 * { rounds, ctx, variants: [label, value][], extra }. Prints the usage (script, what VALUE names) and exits 2
 * when one of the first three is missing.
 */
export function abArgs(script, value, argv = process.argv.slice(2)) {
  const [rounds, ctx, ...rest] = argv;
  const sep = rest.indexOf('--');
  const variants = (sep < 0 ? rest : rest.slice(0, sep)).map((v) => v.split('='));
  const extra = sep < 0 ? [] : rest.slice(sep + 1);
  if (!rounds || !ctx || !variants.length) {
    console.error(`usage: ${script} ROUNDS CTX LABEL=${value}... [-- build flags]`);
    process.exit(2);
  }
  return { rounds, ctx, variants, extra };
}
/** The 1-minute load average, to print beside timings taken on a shared machine. */
export const load1 = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
