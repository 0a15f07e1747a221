// Drives the real `tsbuild` binary, as users and CI scripts do.
import { spawnSync, spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, symlinkSync, chmodSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Compiled to test/dist/helpers/: the repository is three levels up.
export const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const bin = join(repo, 'packages', 'builder', 'bin', 'tsbuild.js');
/** The `tsbuild` command as users run it (the package's bin: a launcher script in front of `bin`). */
export const command = join(repo, 'packages', 'builder', 'bin', 'tsbuild');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function tsbuild(
  args: string[],
  opts: { root?: string; cwd?: string; input?: string; env?: Record<string, string | undefined> } = {},
): Result {
  const env: Record<string, string | undefined> = { ...process.env, CI: 'true', ...opts.env };
  if (opts.root) env.TSBUILD_ROOT = opts.root;
  const r = spawnSync(command, args, {
    cwd: opts.cwd ?? repo,
    env: env,
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  return { code: r.status ?? 128 + 9, stdout: r.stdout, stderr: r.stderr };
}

/** Fails with everything the command printed, so a broken build explains itself in CI logs. */
export function ok(r: Result, what = 'tsbuild'): Result {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return r;
}

export function tsbuildAsync(args: string[], opts: { root?: string; env?: Record<string, string> } = {}) {
  const env = { ...process.env, CI: 'true', ...opts.env, ...(opts.root ? { TSBUILD_ROOT: opts.root } : {}) };
  return spawn(command, args, { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function tempDir(prefix: string): string {
  const base = join(tmpdir(), 'tsbuild-test');
  mkdirSync(base, { recursive: true });
  return mkdtempSync(join(base, `${prefix}-`));
}

/** The temp dirs one test file makes, removed together at its end (`test.after(() => cleanup(...dirs))`). */
export function tempDirs(): { temp: (prefix: string) => string; dirs: string[] } {
  const dirs: string[] = [];
  const temp = (prefix: string): string => {
    const d = tempDir(prefix);
    dirs.push(d);
    return d;
  };
  return { temp, dirs };
}

export type FileSpec = string | { content: string; mode?: number } | { symlink: string } | { dir: true; mode?: number };

/** Writes a build context from a table of files. */
export function context(files: Record<string, FileSpec>): string {
  const dir = tempDir('ctx');
  for (const [path, spec] of Object.entries(files)) {
    const abs = join(dir, path);
    mkdirSync(dirname(abs), { recursive: true });
    if (typeof spec === 'string') writeFileSync(abs, spec);
    else if ('symlink' in spec) symlinkSync(spec.symlink, abs);
    else if ('dir' in spec) {
      mkdirSync(abs, { recursive: true });
      if (spec.mode !== undefined) chmodSync(abs, spec.mode);
    } else {
      writeFileSync(abs, spec.content);
      if (spec.mode !== undefined) chmodSync(abs, spec.mode);
    }
  }
  return dir;
}

const baseBuilt = new Set<string>();
let rootfsMade = false;
export const Base = 'tsbuild/busybox:1';

/** A store with the busybox base image in it (built from fixtures/busybox once per store). */
export function storeWithBase(root = tempDir('store')): string {
  if (!baseBuilt.has(root)) {
    if (!rootfsMade) {
      // Run every time (it returns at once when rootfs.tar is current) and judged by its own exit
      // status: a failed or stale fixture fails here, not later as a confusing build error.
      const r = spawnSync('bash', [join(repo, 'fixtures', 'busybox', 'make-rootfs.sh')], { encoding: 'utf8' });
      const stderr = `${r.stderr ?? ''}${r.error ?? r.signal ?? ''}`;
      ok({ code: r.status ?? 1, stdout: r.stdout ?? '', stderr }, 'fixtures/busybox/make-rootfs.sh');
      rootfsMade = true;
    }
    // A fixed SOURCE_DATE_EPOCH makes the base the same image in every store, as a pulled base would be.
    ok(
      tsbuild(['build', '-q', '-t', Base, join(repo, 'fixtures', 'busybox')], {
        root,
        env: { SOURCE_DATE_EPOCH: '1700000000' },
      }),
      'building the busybox base',
    );
    baseBuilt.add(root);
  }
  return root;
}

export function cleanup(...dirs: string[]): void {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/**
 * Like `tsbuild`, without blocking this process (needed when the test itself serves HTTP, or watches the
 * output as it comes: `onStderr` sees all of stderr so far at each piece and may signal the CLI).
 */
export function tsbuildP(
  args: string[],
  opts: {
    root?: string;
    env?: Record<string, string>;
    onStderr?: (all: string, kill: (sig: NodeJS.Signals) => void) => void;
  } = {},
): Promise<Result> {
  return new Promise((resolve) => {
    const child = tsbuildAsync(args, opts);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (b: string) => (stdout += b));
    child.stderr.setEncoding('utf8').on('data', (b: string) => {
      stderr += b;
      opts.onStderr?.(stderr, (sig) => child.kill(sig));
    });
    // Killed by a signal: the shell's 128 + N.
    child.on('close', (code, sig) =>
      resolve({ code: code ?? 128 + (sig ? osConstants.signals[sig] : 9), stdout, stderr }),
    );
  });
}

/** A process's state letter from /proc/PID/stat ('T': stopped, as a TSBUILD_TEST_BUILD_STOP point leaves it). */
export function procState(pid: number): string | undefined {
  try {
    return /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
  } catch {
    return undefined; // gone
  }
}
