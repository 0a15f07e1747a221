// A client for one registry: authentication (challenge → token/basic, cached per scope),
// manual redirects (credentials only ever go to the registry's own host), status checking
// that turns registry error bodies into RegistryErrors, and the retry policy.
import { registryHost } from '../reference.js';
import { basicHeader, fetchToken, parseChallenge, type Challenge, type Token } from './auth.js';
import { DockerConfigCredentials, type Credential, type CredentialSource } from './credentials.js';
import { RegistryError, parseErrorBody } from './errors.js';
import { isInsecureRegistry } from './insecure.js';
import {
  defaultRetryPolicy,
  discard,
  parseRetryAfter,
  probeScheme,
  readBody,
  send,
  withRetry,
  type Body,
  type HttpResponse,
  type RetryPolicy,
} from './transport.js';

export interface ClientOptions {
  /** Default: $DOCKER_CONFIG/config.json. */
  credentials?: CredentialSource;
  /**
   * Insecure registries besides loopback (--insecure-registry values: host, host:port, CIDR): HTTPS
   * without verifying the certificate, or plain HTTP when they do not speak TLS.
   */
  insecure?: string[];
  retry?: Partial<RetryPolicy>;
  /** Socket idle timeout per request. Default 60 s. */
  timeoutMs?: number;
  /** Progress and retry notes (never credentials). */
  log?: (message: string) => void;
  /** Stops every request, and so the pull or push (Ctrl-C); a request then fails with the signal's reason. */
  signal?: AbortSignal;
}

export interface RequestSpec {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** A path under the registry (/v2/...) or an absolute URL (an upload Location). */
  url: string | URL;
  headers?: Record<string, string>;
  body?: Body;
  /** Token scopes, e.g. repository:app:pull,push. */
  scopes: string[];
  /** Follow redirects (GET/HEAD of blobs and manifests). */
  redirects?: boolean;
}

export interface ClientStats {
  requests: number;
  retries: number;
  tokenFetches: number;
}

const maxRedirects = 5;

/**
 * The scheme each insecure registry (host:port) turned out to speak, found once in a process: every
 * client of that registry (a build's pulls, its push, the cache) then goes straight to it.
 */
const schemes = new Map<string, Promise<'https:' | 'http:' | undefined>>();

export class RegistryClient {
  /** The registry as named in references (docker.io, localhost:5000). */
  readonly registry: string;
  /** The host:port connected to. */
  readonly host: string;
  /**
   * Spoken to as docker speaks to an insecure registry: every request (the token fetch and redirects
   * too) over HTTPS without verifying the certificate, or over plain HTTP if it does not speak TLS.
   */
  readonly insecure: boolean;
  /** https://host, or http://host once an insecure registry turned out to speak plain HTTP. */
  base: URL;
  readonly options: ClientOptions;
  readonly policy: RetryPolicy;
  readonly stats: ClientStats = { requests: 0, retries: 0, tokenFetches: 0 };
  private readonly credentials: CredentialSource;
  private credential: Promise<Credential | undefined> | undefined;
  /** The last challenge seen per host. */
  private readonly challenges = new Map<string, Challenge>();
  private schemeSettled = false;
  /** Bearer tokens per host + sorted scope set. */
  private readonly tokens = new Map<string, Token>();

  constructor(registry: string, options: ClientOptions = {}) {
    this.registry = registry;
    this.host = registryHost(registry);
    this.options = options;
    this.insecure = isInsecureRegistry(this.host, options.insecure);
    this.base = new URL(`https://${this.host}`);
    this.policy = { ...defaultRetryPolicy, ...options.retry };
    this.credentials = options.credentials ?? new DockerConfigCredentials();
  }

  log(message: string): void {
    this.options.log?.(message);
  }

  private getCredential(): Promise<Credential | undefined> {
    this.credential ??= this.credentials.get(this.registry);
    return this.credential;
  }

  /** For an insecure registry, settle its scheme (probed once per process) before the first request. */
  private async settleScheme(): Promise<void> {
    if (!this.insecure || this.schemeSettled) return;
    let found = schemes.get(this.host);
    if (!found) {
      found = probeScheme(this.host, { timeoutMs: this.options.timeoutMs, signal: this.options.signal });
      schemes.set(this.host, found);
    }
    const scheme = await found;
    // Nothing learnt (the connection failed): this request goes over plain HTTP, the last thing docker
    // tries, and reports the failure; the next one probes again.
    this.base = new URL(`${scheme ?? 'http:'}//${this.host}`);
    if (scheme === undefined) {
      if (schemes.get(this.host) === found) schemes.delete(this.host);
      return;
    }
    this.schemeSettled = true;
  }

  resolveURL(url: string | URL): URL {
    return typeof url === 'string' ? new URL(url, this.base) : url;
  }

  /**
   * Authorization for a request to `url`: nothing for any origin but the registry's own. The origin, not the
   * host: https://reg and http://reg are one host, and credentials meant for TLS went to port 80 in clear when
   * an insecure registry redirected there.
   */
  private async authorization(url: URL, scopes: string[], force: boolean): Promise<string | undefined> {
    if (url.origin !== this.base.origin) return undefined;
    const challenge = this.challenges.get(url.host);
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') {
      const cred = await this.getCredential();
      return cred ? basicHeader(cred) : undefined;
    }
    if (challenge.scheme === 'bearer') {
      const key = `${url.host} ${[...scopes].sort().join(' ')}`;
      const cached = this.tokens.get(key);
      if (cached && !force && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
      this.stats.tokenFetches++;
      const token = await fetchToken({
        challenge,
        scopes,
        credential: await this.getCredential(),
        insecure: this.options.insecure ?? [],
        unverified: this.insecure,
        timeoutMs: this.options.timeoutMs ?? 60_000,
        signal: this.options.signal,
        host: this.host,
      });
      this.tokens.set(key, token);
      return `Bearer ${token.token}`;
    }
    return undefined;
  }

  /**
   * One logical request: authorization, one re-authentication on 401 (expired token), and
   * redirects if allowed. Returns any status; callers check it with `check`.
   * Network failures throw retryable RegistryErrors; the caller's retry loop decides.
   */
  async request(spec: RequestSpec, what: string): Promise<HttpResponse> {
    await this.settleScheme();
    let url = this.resolveURL(spec.url);
    let reauthenticated = false;
    let forceToken = false;
    for (let hops = 0; ;) {
      const headers: Record<string, string> = { ...spec.headers };
      let auth: string | undefined;
      try {
        auth = await this.authorization(url, spec.scopes, forceToken);
      } catch (err) {
        if (err instanceof RegistryError) throw new RegistryError(err.code, `${what}: ${err.message}`, err.info);
        throw err;
      }
      if (auth) headers.authorization = auth;
      this.stats.requests++;
      const { timeoutMs, signal } = this.options;
      // A network failure names the request; `what` says whose (which image, blob, repository) as a status's does.
      const unverified = this.insecure;
      const res = await send({
        method: spec.method,
        url,
        headers,
        body: spec.body,
        timeoutMs,
        signal,
        unverified,
      }).catch((err: unknown) => {
        throw err instanceof RegistryError ? new RegistryError(err.code, `${what}: ${err.message}`, err.info) : err;
      });
      if (res.status === 401 && url.origin === this.base.origin && !reauthenticated) {
        const challenge = parseChallenge(res.headers['www-authenticate']);
        discard(res);
        if (!challenge || (challenge.scheme !== 'basic' && challenge.scheme !== 'bearer')) {
          throw new RegistryError(
            'unauthorized',
            `${what}: ${this.host} answered 401 without a usable WWW-Authenticate challenge`,
            { host: this.host, status: 401 },
          );
        }
        this.challenges.set(url.host, challenge);
        const cred = await this.getCredential().catch((err: unknown) => {
          throw err instanceof RegistryError ? new RegistryError(err.code, `${what}: ${err.message}`, err.info) : err;
        });
        if (challenge.scheme === 'basic' && !cred) {
          throw new RegistryError(
            'unauthorized',
            `${what}: ${this.host} requires authentication and there are no credentials for "${this.registry}" ` +
              `(docker config: auths, credHelpers, credsStore)`,
            { host: this.host, status: 401 },
          );
        }
        reauthenticated = true;
        forceToken = true;
        continue;
      }
      forceToken = false;
      if (spec.redirects && [301, 302, 303, 307, 308].includes(res.status)) {
        const location = res.headers.location;
        discard(res);
        if (++hops > maxRedirects)
          throw new RegistryError('http', `${what}: more than ${maxRedirects} redirects`, {
            host: this.host,
            status: res.status,
          });
        url = this.followLocation(url, location, what);
        continue;
      }
      return res;
    }
  }

  /** Resolve a Location header relative to the URL it came from; refuse odd schemes and downgrades. */
  followLocation(from: URL, location: string | undefined, what: string): URL {
    if (!location)
      throw new RegistryError('invalid', `${what}: ${from.host} sent a redirect or upload response without Location`, {
        host: from.host,
      });
    let next: URL;
    try {
      next = new URL(location, from);
    } catch {
      throw new RegistryError('invalid', `${what}: ${from.host} sent a bad Location`, { host: from.host });
    }
    if (next.protocol !== 'https:' && next.protocol !== 'http:')
      throw new RegistryError('invalid', `${what}: ${from.host} sent a Location with scheme ${next.protocol}`, {
        host: from.host,
      });
    if (
      next.protocol === 'http:' &&
      from.protocol === 'https:' &&
      !isInsecureRegistry(next.host, this.options.insecure)
    ) {
      throw new RegistryError('invalid', `${what}: refusing a redirect from HTTPS to plain HTTP (${next.host})`, {
        host: from.host,
      });
    }
    if (next.username || next.password)
      throw new RegistryError('invalid', `${what}: ${from.host} sent a Location with userinfo`, { host: from.host });
    return next;
  }

  /** Throw a RegistryError unless res.status is one of `ok`. Consumes the body of a failure. */
  async check(res: HttpResponse, ok: number[], what: string, subject?: string): Promise<void> {
    if (ok.includes(res.status)) return;
    let summary = '';
    let codes: string[] = [];
    if (res.status !== 0) {
      try {
        const body = await readBody(res, 64 * 1024, what);
        ({ summary, codes } = parseErrorBody(body.toString('utf8')));
      } catch {
        discard(res);
      }
    }
    const status = res.status;
    const retryable = status === 408 || status === 429 || status >= 500;
    const code = status === 401 ? 'unauthorized' : status === 403 ? 'denied' : status === 404 ? 'not-found' : 'http';
    let hint = '';
    if (status === 401)
      hint = (await this.getCredential().catch(() => undefined))
        ? ` (credentials for "${this.registry}" were rejected)`
        : ` (no credentials for "${this.registry}")`;
    throw new RegistryError(
      code,
      `${what}: ${res.url.host} answered HTTP ${status}${summary ? ` ${summary}` : ''}${hint}`,
      {
        host: res.url.host,
        status,
        registryCodes: codes,
        subject,
        retryable,
        retryAfterMs: status === 429 || status === 503 ? parseRetryAfter(res.headers['retry-after']) : undefined,
      },
    );
  }

  /** Run `fn` under this client's retry policy, logging each retry. */
  retry<T>(what: string, fn: (attempt: number) => Promise<T>): Promise<T> {
    const { signal } = this.options;
    // Stopped (Ctrl-C): whatever failed meanwhile (a body read the abort cut short reads as a broken
    // connection) is the stop, never retried after a backoff.
    const once = (n: number) =>
      fn(n).catch((e: unknown) => {
        throw signal?.aborted ? (signal.reason as Error) : e;
      });
    return withRetry(this.policy, once, (err, attempt, delay) => {
      this.stats.retries++;
      this.log(`retry ${attempt}/${this.policy.attempts - 1} of ${what} in ${Math.round(delay)} ms: ${err.message}`);
    });
  }

  /** GET /v2/ (with credentials) to check that the registry answers and accepts us. */
  async ping(): Promise<void> {
    await this.retry(`ping ${this.host}`, async () => {
      const what = `checking ${this.host}/v2/`;
      const res = await this.request({ method: 'GET', url: '/v2/', scopes: [] }, what);
      await this.check(res, [200], what);
      discard(res);
    });
  }
}
