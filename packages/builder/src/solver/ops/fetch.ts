// ADD https://…: download into the store's temp area, verify --checksum, name the file
// after the URL's last path segment, and date it by Last-Modified as docker does.
// The server is untrusted: at most 10 redirects, never from https to plain http (which would
// drop the integrity the user asked for), and at most TSBUILD_ADD_MAX_SIZE bytes (default 2g),
// so that a server cannot fill the store's disk.
// node:http/https rather than fetch(): the TLS trust must be the CLI's (clientSecureContext,
// which adds the CAs of NODE_EXTRA_CA_CERTS that the launcher kept from Node), and fetch() takes no
// TLS options on Node 20.
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { CopyStep } from '@tsbuild/parser';
import { remote } from '@tsbuild/layerstore';
import type { StepContext } from './context.js';
import { parseSize } from '../../options.js';
import type { SourceItem } from './sources.js';
import { BuildError, where } from '../../errors.js';

export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

export async function fetchUrl(
  ctx: StepContext,
  url: string,
  step: CopyStep,
): Promise<{ item: SourceItem; cleanup: () => Promise<void> }> {
  const dir = await ctx.opts.store.tempDir('add-');
  const cleanup = () => fsp.rm(dir, { recursive: true, force: true });
  try {
    const { res, url: finalUrl } = await get(new URL(url), ctx.opts.signal);
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) {
      res.resume();
      throw new BuildError(`${where(step)}: ADD ${url}: HTTP ${status} ${res.statusMessage ?? ''}`.trimEnd());
    }
    const name = posix.basename(finalUrl.pathname) || 'download';
    const file = join(dir, 'content');
    const max = maxBytes();
    const tooBig = () =>
      new BuildError(
        `${where(step)}: ADD ${url}: the download is larger than ${max} bytes, the limit for ADD of a URL ` +
          `(raise it with ${maxSizeVar}=SIZE, e.g. ${maxSizeVar}=8g)`,
      );
    const length = Number(res.headers['content-length']);
    if (Number.isSafeInteger(length) && length > max) {
      res.destroy();
      throw tooBig();
    }
    const h = createHash('sha256');
    let got = 0;
    let over = false;
    res.on('data', (b: Buffer) => {
      got += b.length;
      if (got > max && !over) {
        over = true;
        res.destroy(new Error('too big'));
      }
      h.update(b);
    });
    try {
      await pipeline(res, createWriteStream(file, { mode: 0o600 }));
    } catch (e) {
      if (over) throw tooBig();
      throw e;
    }
    const digest = h.digest('hex');
    if (step.checksum && step.checksum !== `sha256:${digest}`) {
      throw new BuildError(
        `${where(step)}: ADD ${url}: checksum mismatch: expected ${step.checksum}, got sha256:${digest}`,
      );
    }
    const lm = res.headers['last-modified'];
    const mtime = lm && !Number.isNaN(Date.parse(lm)) ? new Date(lm) : new Date(0);
    const st = await fsp.stat(file);
    return {
      item: {
        path: name,
        isDir: false,
        files: [{ rel: '', kind: 'file', host: file, mode: 0o600, uid: 0, gid: 0, mtime, size: st.size, hash: digest }],
      },
      cleanup,
    };
  } catch (e) {
    await cleanup();
    if (e instanceof BuildError) throw e;
    throw new BuildError(
      `${where(step)}: ADD ${url}: ${remote.certificateProblem(e as Error) ?? (e as Error).message}`,
    );
  }
}

const requireBuiltin = createRequire(import.meta.url);
const maxRedirects = 10;
const maxSizeVar = 'TSBUILD_ADD_MAX_SIZE';
const defaultMaxBytes = 2 * 1024 ** 3;

/** The byte limit of one ADD download: $TSBUILD_ADD_MAX_SIZE (docker-style size: 512m, 8g) or 2 GiB. */
function maxBytes(): number {
  const v = process.env[maxSizeVar];
  if (v === undefined || v === '') return defaultMaxBytes;
  try {
    return parseSize(v, maxSizeVar);
  } catch {
    throw new BuildError(`${maxSizeVar}="${v}" is not a size (use e.g. 512m, 8g)`, 2);
  }
}
const idleTimeoutMs = 300_000;

/** GET url, following redirects; resolves with the final response's headers. */
async function get(url: URL, signal: AbortSignal): Promise<{ res: IncomingMessage; url: URL }> {
  for (let hops = 0; ; hops++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new Error(`unsupported URL scheme ${url.protocol}`);
    const lib = requireBuiltin(url.protocol === 'https:' ? 'node:https' : 'node:http') as typeof import('node:https');
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const secureContext = url.protocol === 'https:' ? remote.clientSecureContext() : undefined;
      const req = lib.get(url, { signal, ...(secureContext ? { secureContext } : {}) }, resolve).on('error', reject);
      // A server that stops sending (before the headers or in the body) fails the step instead of
      // hanging the build: 300 s without a byte, as fetch() allowed.
      req.setTimeout(idleTimeoutMs, () =>
        req.destroy(new Error(`no data from ${url.host} for ${idleTimeoutMs / 1000} s`)),
      );
    });
    const location = res.headers.location;
    if (![301, 302, 303, 307, 308].includes(res.statusCode ?? 0) || !location) return { res, url };
    res.resume();
    const next = new URL(location, url);
    if (hops === maxRedirects) throw new Error(`more than ${maxRedirects} redirects (the last to ${next})`);
    if (url.protocol === 'https:' && next.protocol !== 'https:') {
      const scheme = next.protocol.replace(':', '');
      throw new Error(`refusing the redirect from ${url} to ${next}: an https URL may not redirect to plain ${scheme}`);
    }
    url = next;
  }
}
