// A per-snapshot lock file between processes: created with O_EXCL, holding the owner's pid.
// A lock whose pid is no longer alive is stale (the owner crashed) and is broken.
import { open, readFile, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

export async function withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = Number(await readFile(path, 'utf8').catch(() => ''));
    // An empty file may be a lock being written right now: only a dead pid is stale.
    if (owner && !alive(owner)) { await unlink(path).catch(() => {}); continue; }
    await sleep(wait);
  }
  try {
    return await fn();
  } finally {
    await unlink(path).catch(() => {});
  }
}
