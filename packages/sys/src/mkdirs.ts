import { promises as fsp } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p` that always ends. Node's `mkdir(dir, { recursive: true })` never returns (a thread at 100% CPU) for
 * a directory whose mkdir fails with ENOENT although its parent exists, as in /proc or /sys: it makes the parent
 * (EEXIST), retries the child, and so on. Here the missing directories are found once, walking up, and each is
 * made once: a failure is thrown as `cannot create directory DIR: REASON`.
 */
export async function mkdirs(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let p = resolve(dir); ; p = dirname(p)) {
    const st = await fsp.stat(p).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw cannot(p, e);
      return undefined;
    });
    if (st?.isDirectory()) break;
    if (st) throw cannot(p, Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }));
    missing.push(p);
    if (dirname(p) === p) break;
  }
  for (const d of missing.reverse()) {
    await fsp.mkdir(d).catch(async (e: NodeJS.ErrnoException) => {
      // Made meanwhile by another process: as good as made here.
      if (e.code === 'EEXIST' && (await fsp.stat(d).catch(() => undefined))?.isDirectory()) return;
      throw cannot(d, e);
    });
  }
}

function cannot(dir: string, e: NodeJS.ErrnoException): Error {
  const why = e.code === 'ENOENT' ? 'this filesystem does not allow it (ENOENT)' : (e.code ?? e.message);
  return Object.assign(new Error(`cannot create directory ${dir}: ${why}`), { code: e.code });
}
