// ADD https://…: download into the store's temp area, verify --checksum, name the file
// after the URL's last path segment, and date it by Last-Modified as docker does.
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CopyStep } from '@tsbuild/parser';
import type { StepContext } from '../solver.js';
import type { SourceItem } from './sources.js';
import { BuildError, where } from '../errors.js';

export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

export async function fetchUrl(ctx: StepContext, url: string, step: CopyStep): Promise<{ item: SourceItem; cleanup: () => Promise<void> }> {
  const dir = await ctx.opts.store.tempDir('add-');
  const cleanup = () => fsp.rm(dir, { recursive: true, force: true });
  try {
    const res = await fetch(url, { redirect: 'follow', signal: ctx.opts.signal });
    if (!res.ok || !res.body) throw new BuildError(`${where(step)}: ADD ${url}: HTTP ${res.status} ${res.statusText}`);
    const name = posix.basename(new URL(res.url || url).pathname) || 'download';
    const file = join(dir, 'content');
    const h = createHash('sha256');
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
    body.on('data', (b: Buffer) => h.update(b));
    await pipeline(body, createWriteStream(file, { mode: 0o600 }));
    const digest = h.digest('hex');
    if (step.checksum && step.checksum !== `sha256:${digest}`) {
      throw new BuildError(`${where(step)}: ADD ${url}: checksum mismatch: expected ${step.checksum}, got sha256:${digest}`);
    }
    const lm = res.headers.get('last-modified');
    const mtime = lm && !Number.isNaN(Date.parse(lm)) ? new Date(lm) : new Date(0);
    const st = await fsp.stat(file);
    return {
      item: { path: name, isDir: false, files: [{ rel: '', kind: 'file', host: file, mode: 0o600, uid: 0, gid: 0, mtime, size: st.size, hash: digest }] },
      cleanup,
    };
  } catch (e) {
    await cleanup();
    if (e instanceof BuildError) throw e;
    throw new BuildError(`${where(step)}: ADD ${url}: ${(e as Error).message}`);
  }
}
