// Digests, once: the only form accepted is `sha256:<64 lowercase hex>`, because digest strings name files.
import { createHash } from 'node:crypto';
import { StoreError, type Digest } from './types.js';

const digestRe = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && digestRe.test(s);
}

/** Only `sha256:<64 lowercase hex>` is accepted: a digest string is used to build file paths. */
export function checkDigest(s: unknown, what = 'digest'): Digest {
  if (!isDigest(s))
    throw new StoreError('invalid', `${what} ${JSON.stringify(s)} is not sha256:<64 hex digits>`, String(s));
  return s;
}

export function hexOf(d: Digest): string {
  return checkDigest(d).slice(7);
}

export function sha256(bytes: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
