// One HTTP exchange over node:http/https with keep-alive agents, and the retry policy
// around it. Higher layers (client.ts) add authentication and redirects.
import type * as Http from 'node:http';
import type * as Https from 'node:https';
import type * as Tls from 'node:tls';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { RegistryError, redactURL } from './errors.js';
import { certificateProblem, clientSecureContext } from './tls.js';

// node:http and node:https are loaded on the first request that needs each: most tsbuild commands
// never talk to a registry, and loading them was a tenth of a cached rebuild's start. A registry
// known to speak plain HTTP (remembered per process, see probeScheme) never loads https again.
const requireBuiltin = createRequire(import.meta.url);
let plain: { lib: typeof Http; agent: Http.Agent } | undefined;
let secure: { lib: typeof Https; agent: Https.Agent } | undefined;
let unverified: { lib: typeof Https; agent: Https.Agent } | undefined;
function net(protocol: string, verify: boolean): { lib: typeof Http | typeof Https; agent: Http.Agent } {
  if (protocol === 'https:') {
    const lib = requireBuiltin('node:https') as typeof Https;
    // An insecure registry's connections (docker's InsecureSkipVerify) have a pool of their own, so
    // that no verified request ever reuses a socket whose certificate was not checked.
    if (!verify) {
      unverified ??= { lib, agent: new lib.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false }) };
      return unverified;
    }
    secure ??= { lib, agent: new lib.Agent({ keepAlive: true, maxSockets: 16, secureContext: clientSecureContext() }) };
    return secure;
  }
  if (!plain) {
    const lib = requireBuiltin('node:http') as typeof Http;
    plain = { lib, agent: new lib.Agent({ keepAlive: true, maxSockets: 16 }) };
  }
  return plain;
}

/**
 * The server answered a TLS ClientHello with bytes that are no TLS record (an HTTP server's 400):
 * OpenSSL reads "HTTP/1.1" as a record of an unknown version or an impossible length. A TLS server
 * that refuses the handshake (a protocol version, a client certificate) fails with other codes.
 */
function notTls(err: Error & { code?: string }): boolean {
  // tls.connect names it in the code; https.request says EPROTO and leaves it to the message.
  const code = err.code === 'EPROTO' ? err.message.replace(/ /g, '_').toUpperCase() : (err.code ?? '');
  return /(^ERR_SSL_|:)(WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|UNKNOWN_PROTOCOL)(:|$)/.test(code);
}

/**
 * How to reach an insecure registry at `host` (host[:port]), as docker does: HTTPS when a TLS
 * handshake (certificate unchecked) succeeds, plain HTTP when the server answers it in something
 * else (it speaks HTTP). Undefined when the connection itself failed (refused, unknown host, timed
 * out): nothing is known, and the request that follows reports the failure.
 */
export async function probeScheme(
  host: string,
  o: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<'https:' | 'http:' | undefined> {
  // A plain GET /v2/ first when the registry is named with its port: a registry that answers it in HTTP, as a
  // registry answers (200 or 401, with Docker-Distribution-API-Version), speaks HTTP on that port, and is then
  // reached without loading node:tls and making a secure context (20 to 80 ms of a pull or push from a local
  // registry, which is what most insecure registries are). One port speaks one of the two, so the answer is
  // the one docker's HTTPS-first order gives. Without a port the two schemes mean two ports (80 and 443),
  // where a web server on 80 (a redirect to HTTPS, say) says nothing about the registry on 443: the TLS
  // handshake decides, as any answer other than a registry's does. The probe carries no credentials.
  if (hasPort(host) && (await answersAsRegistryOverHttp(host, o))) return 'http:';
  return probeTls(host, o);
}

const hasPort = (host: string): boolean => /:[0-9]+$/.test(host) && !/^\[[^\]]*\]$/.test(host);

/** Whether GET /v2/ over plain HTTP at `host` gets a registry's answer: 200 or 401, naming the API version. */
function answersAsRegistryOverHttp(host: string, o: { timeoutMs?: number; signal?: AbortSignal }): Promise<boolean> {
  return new Promise((resolve) => {
    if (o.signal?.aborted) return resolve(false);
    const { lib, agent } = net('http:', true);
    const r = lib.request(new URL(`http://${host}/v2/`), {
      method: 'GET',
      headers: { 'user-agent': 'tsbuild' },
      agent,
      signal: o.signal,
    });
    r.setTimeout(o.timeoutMs ?? 60_000, () => r.destroy(new Error('timed out')));
    r.once('error', () => resolve(false));
    r.once('response', (res) => {
      res.on('error', () => {});
      res.resume(); // drained, so a registry's keep-alive connection goes back to the pool for the request
      const status = res.statusCode ?? 0;
      resolve((status === 200 || status === 401) && res.headers['docker-distribution-api-version'] !== undefined);
    });
    r.end();
  });
}

/** The TLS half of probeScheme: a handshake with the certificate unchecked. */
function probeTls(
  host: string,
  o: { timeoutMs?: number; signal?: AbortSignal },
): Promise<'https:' | 'http:' | undefined> {
  const url = new URL(`https://${host}`);
  const tls = requireBuiltin('node:tls') as typeof Tls;
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return new Promise((resolve) => {
    if (o.signal?.aborted) return resolve(undefined);
    const socket = tls.connect({
      host: hostname,
      port: Number(url.port || 443),
      servername: /^[0-9.]+$|:/.test(hostname) ? undefined : hostname,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    const done = (scheme: 'https:' | 'http:' | undefined) => {
      o.signal?.removeEventListener('abort', abort);
      socket.destroy();
      resolve(scheme);
    };
    const abort = () => done(undefined);
    o.signal?.addEventListener('abort', abort, { once: true });
    socket.setTimeout(o.timeoutMs ?? 60_000, () => done(undefined));
    socket.once('secureConnect', () => done('https:'));
    socket.once('error', (err) => done(notTls(err) ? 'http:' : undefined));
  });
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  url: URL;
}

/**
 * A request body written piece by piece. `write` resolves once its chunk has gone to the kernel, so
 * the caller may reuse the chunk's memory; it rejects with a retryable RegistryError if the
 * connection fails. Anything else `writeTo` throws (a corrupt blob) fails the request as it is.
 * Called afresh for every request sent (a replay after a 401 starts the body over).
 */
export interface BodyWriter {
  writeTo(write: (chunk: Buffer) => Promise<void>): Promise<void>;
}

export type Body = Buffer | BodyWriter;

export interface RawRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Body;
  /** Socket idle timeout. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** HTTPS without verifying the certificate (an insecure registry's requests). */
  unverified?: boolean;
}

/**
 * Send one request; resolves when the response headers arrive — for a success status, once the
 * whole body has been sent too, because a registry that vouches for bytes it has not received
 * (or that were never verified) is not believed. Network failures are retryable RegistryErrors.
 */
export function send(req: RawRequest): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    if (req.signal?.aborted) return reject(req.signal.reason as Error);
    const { url } = req;
    const { lib, agent } = net(url.protocol, !req.unverified);
    const headers: Record<string, string> = { 'user-agent': 'tsbuild', ...req.headers };
    if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
    let settled = false;
    // Stopped by the caller (Ctrl-C): its reason as it is, not a network failure a retry loop would try again.
    const networkError = (err: Error): Error =>
      req.signal?.aborted
        ? (req.signal.reason as Error)
        : err instanceof RegistryError
          ? err
          : new RegistryError('network', `${req.method} ${redactURL(url)}: ${describeNetworkError(err, url)}`, {
              host: url.host,
              // Neither an untrusted certificate nor a server that does not speak TLS changes on a retry.
              retryable: certificateProblem(err) === undefined && !(url.protocol === 'https:' && notTls(err)),
            });
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      reject(err);
    };
    let bodySent: Promise<void> | undefined;
    // A registry may refuse a streamed body as soon as it sees the headers (401, 413, 400): the rest
    // is not sent, and the request is let go only after its answer has been read, so the error the
    // registry wrote is what the caller sees (not a connection cut while it was being read).
    let refused = false;
    const stopped = new Error('the registry answered before the body was sent');
    const r = lib.request(url, { method: req.method, headers, agent, signal: req.signal }, (res) => {
      res.on('error', () => {}); // consumers see errors through their own reads
      const response = { status: res.statusCode ?? 0, headers: res.headers, body: res, url };
      const ok = response.status >= 200 && response.status < 300;
      if (!ok && bodySent) {
        refused = true;
        res.once('close', () => r.destroy());
      }
      (bodySent && ok ? bodySent : Promise.resolve()).then(
        () => {
          if (settled) return;
          settled = true;
          resolve(response);
        },
        () => res.destroy(), // the body's failure has rejected already
      );
    });
    r.setTimeout(req.timeoutMs ?? 60_000, () =>
      r.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })),
    );
    r.on('error', (err) => fail(networkError(err)));
    if (req.body === undefined) r.end();
    else if (Buffer.isBuffer(req.body)) r.end(req.body);
    else {
      const pending = new Set<(err: Error) => void>();
      const closed = () => networkError(Object.assign(new Error('connection closed while sending'), { code: 'EPIPE' }));
      r.on('close', () => {
        for (const rejectWrite of pending) rejectWrite(closed());
        pending.clear();
      });
      const write = (chunk: Buffer) =>
        new Promise<void>((done, failWrite) => {
          if (refused) return failWrite(stopped);
          if (r.destroyed) return failWrite(closed());
          pending.add(failWrite);
          r.write(chunk, (err) => {
            pending.delete(failWrite);
            if (err) failWrite(networkError(err));
            else done();
          });
        });
      bodySent = req.body.writeTo(write).then(() => {
        r.end();
      });
      bodySent.catch((err: Error) => {
        if (refused) return; // the answer is the caller's; the request goes once it has been read
        fail(err);
        r.destroy();
      });
    }
  });
}

function describeNetworkError(err: Error & { code?: string }, url?: URL): string {
  const tls = certificateProblem(err);
  if (tls) return tls;
  // What docker says as "server gave HTTP response to HTTPS client", with the way out.
  if (url?.protocol === 'https:' && notTls(err))
    return `the server does not speak TLS: it answered in plain HTTP (--insecure-registry ${url.host} allows that)`;
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset';
    case 'EPIPE':
      return 'connection closed while sending';
    case 'ETIMEDOUT':
      return 'timed out';
    case 'ENOTFOUND':
      return 'host not found';
    default:
      return err.message || String(err);
  }
}

/** Read a response body whole, refusing more than `limit` bytes. */
export async function readBody(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    res.body.destroy();
    throw new RegistryError('too-large', `${what}: ${declared} bytes is more than the limit of ${limit}`, {
      host: res.url.host,
    });
  }
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > limit) {
        res.body.destroy();
        throw new RegistryError('too-large', `${what}: more than the limit of ${limit} bytes`, { host: res.url.host });
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof RegistryError) throw err;
    throw new RegistryError('network', `${what}: ${describeNetworkError(err as Error)} while reading the response`, {
      host: res.url.host,
      retryable: true,
    });
  }
  return Buffer.concat(chunks);
}

/** Drain and discard a response so its socket returns to the pool. */
export function discard(res: HttpResponse): void {
  res.body.resume();
}

export interface RetryPolicy {
  /** Attempts in all, first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Cap on a registry's Retry-After. */
  maxRetryAfterMs: number;
}

export const defaultRetryPolicy: RetryPolicy = {
  attempts: 6,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 60_000,
};

export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Run `fn` until it succeeds, retrying retryable RegistryErrors with exponential backoff and
 * full jitter (or the registry's Retry-After). `onRetry` hears about each retry.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  onRetry?: (err: RegistryError, attempt: number, delayMs: number) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof RegistryError) || !err.retryable || attempt >= policy.attempts) throw err;
      const backoff = Math.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      const delay =
        err.info.retryAfterMs !== undefined ? Math.min(err.info.retryAfterMs, policy.maxRetryAfterMs) : backoff;
      onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
