// Small helpers for cgroupfs, where every file is a tiny value and rmdir can race with exiting tasks.
import { readFileSync, writeFileSync, rmdirSync, existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function write(path: string, value: string | number): void {
  try {
    writeFileSync(path, String(value));
  } catch (e) {
    throw new Error(`sandbox: cannot write ${value} to ${path}: ${(e as Error).message}`);
  }
}

/** "key value" lines (memory.events, cpu.stat, memory.oom_control). */
export function readKeyed(path: string, key: string): number | undefined {
  const text = readText(path);
  const m = text?.match(new RegExp(`^${key} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
}

function pids(dir: string): number[] {
  return (readText(`${dir}/cgroup.procs`) ?? '').split('\n').filter(Boolean).map(Number);
}

/** SIGKILLs everything in `dir` until it is empty, then removes it. */
export async function killAndRemove(dir: string, useCgroupKill = false): Promise<void> {
  if (!existsSync(dir)) return;
  for (let i = 0; i < 1000; i++) {
    const left = pids(dir);
    if (left.length === 0) {
      try {
        rmdirSync(dir);
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return;
        if (code !== 'EBUSY') throw e;
      }
    } else if (useCgroupKill && existsSync(`${dir}/cgroup.kill`)) {
      try {
        writeFileSync(`${dir}/cgroup.kill`, '1');
      } catch {
        /* raced with exit */
      }
    } else {
      for (const p of left) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    await sleep(i < 20 ? 2 : 20);
  }
  throw new Error(`sandbox: cgroup ${dir} did not empty`);
}
