// Test fixtures: a busybox root extracted once per process, fresh upper/work dirs per run, and a
// Writable that collects output.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { run, type SandboxSpec, type Exit } from '../src/index.js';

export { runCgroupsOf } from '@tsbuild/testkit';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
export const rootfsTar = join(repo, 'fixtures', 'busybox', 'rootfs.tar');

export const tmp = mkdtempSync('/tmp/tsbuild-sandbox-test-');
export const stateDir = join(tmp, 'state');
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

let busybox: string | undefined;
export function busyboxLower(): string {
  if (!busybox) {
    busybox = join(tmp, 'busybox');
    mkdirSync(busybox);
    execFileSync('tar', ['-xf', rootfsTar, '-C', busybox]);
  }
  return busybox;
}

let n = 0;
export function freshRoot(lowerdirs = [busyboxLower()]): SandboxSpec['root'] {
  const d = join(tmp, `run-${++n}`);
  mkdirSync(join(d, 'upper'), { recursive: true });
  mkdirSync(join(d, 'work'));
  return { lowerdirs, upperdir: join(d, 'upper'), workdir: join(d, 'work') };
}

export class Collect extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.chunks.push(chunk);
    cb();
  }
  get buf(): Buffer {
    return Buffer.concat(this.chunks);
  }
  get text(): string {
    return this.buf.toString('utf8');
  }
}

export interface Result extends Exit {
  out: string;
  err: string;
  root: SandboxSpec['root'];
}

/** Runs argv in a fresh busybox root and collects its output. */
export async function sh(argv: string[] | string, extra: Partial<SandboxSpec> = {}): Promise<Result> {
  const out = new Collect();
  const err = new Collect();
  const root = extra.root ?? freshRoot();
  const exit = await run({
    root,
    argv: typeof argv === 'string' ? ['sh', '-c', argv] : argv,
    env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'],
    cwd: '/',
    uid: 0,
    gid: 0,
    network: 'none',
    stdout: out,
    stderr: err,
    stateDir,
    ...extra,
  });
  return { ...exit, out: out.text, err: err.text, root };
}

/** Every path under dir (relative), for checking what landed in an upperdir. */
export function listTree(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix + e.name;
    out.push(rel);
    if (e.isDirectory()) out.push(...listTree(join(dir, e.name), rel + '/'));
  }
  return out.sort();
}

export function hostMountsMention(s: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').includes(s);
}

/** Pids of host processes whose command line contains marker. */
export function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker)) pids.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return pids;
}

/** Entries of the tsbuild/ cgroup parents named for runs of process `pid`, on either cgroup version. */
export function runCgroupsNamedFor(pid: number): string[] {
  const found: string[] = [];
  const parents = ['', 'pids/', 'cpuacct/', 'cpu/', 'memory/'].map((c) => `/sys/fs/cgroup/${c}tsbuild`);
  for (const d of parents) {
    if (!existsSync(join(d, 'cgroup.procs'))) continue;
    for (const e of readdirSync(d)) if (e.startsWith(`${pid}-`)) found.push(join(d, e));
  }
  return found;
}

/**
 * Freezes a running sandbox whose command counts without pause into a file on a bind mount, and
 * checks that the count stands still while frozen and moves again once thawed. Returns the counts
 * (frozen, frozen a moment later) for the caller's assertions.
 */
export async function checkFreeze(
  freeze: (pid: number) => Promise<() => void>,
): Promise<{ a: string; b: string; moved: boolean }> {
  const w = join(tmp, `freeze-${++n}`);
  mkdirSync(w);
  const ac = new AbortController();
  let pid = 0;
  await new Promise<void>((resolve) => {
    void run({
      root: freshRoot(),
      argv: ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /w/c.new; mv /w/c.new /w/c; done'],
      env: ['PATH=/bin'],
      cwd: '/',
      uid: 0,
      gid: 0,
      network: 'none',
      stateDir,
      signal: ac.signal,
      freezable: true,
      mounts: [{ type: 'bind', source: w, target: '/w' }],
      onStart: (p) => {
        pid = p;
        resolve();
      },
    }).catch(() => {});
  });
  const count = () => (existsSync(join(w, 'c')) ? readFileSync(join(w, 'c'), 'utf8') : '');
  for (let i = 0; i < 1000 && count() === ''; i++) await new Promise((r) => setTimeout(r, 5));
  const thaw = await freeze(pid);
  const a = count();
  await new Promise((r) => setTimeout(r, 300)); // a running loop would count thousands meanwhile
  const b = count();
  thaw();
  let moved = false;
  for (let i = 0; i < 1000 && !moved; i++) {
    moved = count() !== b;
    if (!moved) await new Promise((r) => setTimeout(r, 5));
  }
  ac.abort();
  return { a, b, moved };
}
