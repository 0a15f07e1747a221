// Registry authentication: WWW-Authenticate challenges (Basic, Bearer), the token service
// flow (GET realm?service=&scope= with basic credentials, or POST an OAuth2 refresh_token
// grant for an identity token), and a token cache per host and scope set.
import { RegistryError, parseErrorBody } from './errors.js';
import type { Credential } from './credentials.js';
import { isInsecureRegistry } from './insecure.js';
import { readBody, send } from './transport.js';

export interface Challenge {
  scheme: string; // lower case: basic, bearer
  params: Record<string, string>;
}

/** Parse `Bearer realm="https://auth",service="reg",scope="repository:a:pull"` (first challenge only). */
export function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h) return undefined;
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(h);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  const rest = m[2];
  re.lastIndex = 0;
  let p: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (p = re.exec(rest))) {
    params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  }
  return { scheme: m[1].toLowerCase(), params };
}

export interface Token {
  token: string;
  expiresAt: number;
}

export interface TokenRequest {
  challenge: Challenge;
  scopes: string[];
  credential?: Credential;
  insecure: readonly string[];
  /** The registry is insecure: its token service is spoken to over HTTPS without verifying too (as docker). */
  unverified?: boolean;
  timeoutMs: number;
  signal?: AbortSignal;
  /** The registry host, for messages. */
  host: string;
}

/** Ask the token service for a bearer token. */
export async function fetchToken(req: TokenRequest): Promise<Token> {
  const { challenge, scopes, credential, host } = req;
  const realmText = challenge.params.realm;
  if (!realmText) throw new RegistryError('unauthorized', `${host} asked for a bearer token without a realm`, { host });
  let realm: URL;
  try {
    realm = new URL(realmText);
  } catch {
    throw new RegistryError('invalid', `${host} sent a bad token realm`, { host });
  }
  if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && isInsecureRegistry(realm.host, req.insecure))) {
    throw new RegistryError(
      'unauthorized',
      `${host}: refusing token realm ${realm.protocol}//${realm.host} (plain HTTP to a host not marked insecure)`,
      { host },
    );
  }
  const service = challenge.params.service;
  const allScopes = [...new Set([...scopes, ...(challenge.params.scope ? challenge.params.scope.split(' ') : [])])];
  let res;
  if (credential?.identityToken) {
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: credential.identityToken,
      client_id: 'tsbuild',
    });
    if (service) form.set('service', service);
    if (allScopes.length) form.set('scope', allScopes.join(' '));
    res = await send({
      method: 'POST',
      url: realm,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: Buffer.from(form.toString()),
      timeoutMs: req.timeoutMs,
      signal: req.signal,
      unverified: req.unverified,
    });
  } else {
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    for (const s of allScopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (credential?.username !== undefined && credential.password !== undefined) {
      const basic = Buffer.from(`${credential.username}:${credential.password}`).toString('base64');
      headers.authorization = `Basic ${basic}`;
    }
    res = await send({
      method: 'GET',
      url,
      headers,
      timeoutMs: req.timeoutMs,
      signal: req.signal,
      unverified: req.unverified,
    });
  }
  const body = await readBody(res, 1 << 20, `token from ${realm.host}`);
  if (res.status !== 200) {
    const { summary } = parseErrorBody(body.toString('utf8'));
    throw new RegistryError(
      res.status === 401 || res.status === 403 ? 'unauthorized' : 'http',
      `token service ${realm.host} for ${host} answered HTTP ` +
        `${res.status}${summary ? `: ${summary}` : ''}${credential ? ' (credentials rejected?)' : ''}`,
      { host, status: res.status, retryable: res.status === 429 || res.status >= 500 },
    );
  }
  let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new RegistryError('invalid', `token service ${realm.host} sent something that is not JSON`, { host });
  }
  const token =
    typeof parsed.token === 'string' && parsed.token
      ? parsed.token
      : typeof parsed.access_token === 'string'
        ? parsed.access_token
        : '';
  if (!token || /[\r\n]/.test(token))
    throw new RegistryError('invalid', `token service ${realm.host} sent no usable token`, { host });
  const expiresIn = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60;
  const issued = typeof parsed.issued_at === 'string' ? Date.parse(parsed.issued_at) : NaN;
  const start = Number.isNaN(issued) || issued > Date.now() ? Date.now() : issued;
  // Refresh a little early: a token that expires in flight costs a 401 round trip.
  return { token, expiresAt: start + expiresIn * 1000 - Math.min(10_000, expiresIn * 100) };
}

export function basicHeader(c: Credential): string | undefined {
  if (c.username === undefined || c.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}
