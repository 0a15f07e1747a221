// Errors from talking to a registry. Every one names what was being done (which blob or
// manifest), where (host/repository), and what the registry said (HTTP status, its error
// code and message from the JSON error body). Credentials never appear: URLs in messages
// are reduced to their path, without query strings (pre-signed storage URLs carry secrets
// there).
import type { Code, Coded } from '@tsbuild/errdefs';

export type RegistryErrorCode =
  | 'network' // connection refused/reset, timeout
  | 'http' // an unexpected HTTP status
  | 'unauthorized' // 401 after authenticating
  | 'denied' // 403
  | 'not-found' // 404 for a manifest or blob
  | 'invalid' // the registry sent something malformed or inconsistent (digest, size, JSON shape)
  | 'too-large'
  | 'credentials'; // reading/writing docker config or running a credential helper failed

export class RegistryError extends Error implements Coded {
  constructor(
    public readonly code: RegistryErrorCode,
    message: string,
    public readonly info: {
      host?: string;
      status?: number;
      /** Codes from the registry's `{"errors":[{"code":...}]}` body, e.g. DIGEST_INVALID. */
      registryCodes?: string[];
      /** What failed: a digest, `manifest <tag>`, a repository. */
      subject?: string;
      retryable?: boolean;
      retryAfterMs?: number;
    } = {},
  ) {
    super(message);
    this.name = 'RegistryError';
  }
  /** What the registry sent is data from outside, never a bad request of the user's: `failed`. */
  get errdef(): Code {
    return this.code === 'not-found' ? 'not-found' : this.code === 'network' ? 'unavailable' : 'failed';
  }
  get retryable(): boolean {
    return this.info.retryable === true;
  }
  get status(): number | undefined {
    return this.info.status;
  }
}

/** The path of a URL, never its query (which may hold signed tokens) nor userinfo. */
export function redactURL(url: URL | string): string {
  try {
    const u = typeof url === 'string' ? new URL(url) : url;
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '<url>';
  }
}

/** Parse a distribution error body: {"errors":[{"code","message","detail"}]}. Tolerates anything. */
export function parseErrorBody(text: string): { codes: string[]; summary: string } {
  try {
    const body = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown; detail?: unknown }> };
    if (Array.isArray(body?.errors) && body.errors.length > 0) {
      const parts = body.errors.slice(0, 5).map((e) => {
        const code = typeof e.code === 'string' ? e.code : 'UNKNOWN';
        const msg = typeof e.message === 'string' ? e.message : '';
        const detail =
          e.detail === undefined || e.detail === null
            ? ''
            : typeof e.detail === 'string'
              ? e.detail
              : JSON.stringify(e.detail);
        return `${code}: ${msg}${detail ? ` (${detail.slice(0, 200)})` : ''}`;
      });
      return {
        codes: body.errors.map((e) => (typeof e.code === 'string' ? e.code : 'UNKNOWN')),
        summary: parts.join('; '),
      };
    }
  } catch {
    // not JSON
  }
  const flat = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return { codes: [], summary: flat };
}
