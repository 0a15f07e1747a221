// The CAs that TLS clients trust. Node parses the file NODE_EXTRA_CA_CERTS names as it starts,
// before any code runs, which costs every command (90 ms for Debian's bundle) though few of them
// open a TLS connection. tsbuild's launcher therefore hides the variable from Node and the CLI
// hands the file here: it is read at the first TLS connection and added to Node's default roots,
// as Node itself would have done, so every connection trusts exactly the CAs it trusted before.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Tls from 'node:tls';

const requireBuiltin = createRequire(import.meta.url);
let deferredFile: string | undefined;
let context: Tls.SecureContext | undefined;

/** The NODE_EXTRA_CA_CERTS file that Node did not load at start-up; an empty name means none, as for Node. */
export function trustDeferredExtraCaCerts(file: string): void {
  deferredFile = file === '' ? undefined : file;
  context = undefined;
}

/**
 * The secure context for a TLS client connection (https.Agent, tls.connect): Node's default roots
 * plus the deferred extra CAs. Undefined when none were deferred: Node's own default is then right.
 */
export function clientSecureContext(): Tls.SecureContext | undefined {
  if (deferredFile === undefined) return undefined;
  if (context) return context;
  const tls = requireBuiltin('node:tls') as typeof Tls;
  // Without `ca`, the context starts from the default roots (bundled or, with --use-openssl-ca,
  // the system's); addCACert then adds to a copy of them, which is how Node applies the variable.
  const ctx = tls.createSecureContext();
  let pem: string | undefined;
  try {
    pem = readFileSync(deferredFile, 'latin1');
  } catch (e) {
    // Node's own words when it cannot read the file; it then goes on with the default roots.
    process.emitWarning(`Ignoring extra certs from \`${deferredFile}\`, load failed: ${(e as Error).message}`);
  }
  if (pem !== undefined) ctx.context.addCACert(pem);
  context = ctx;
  return ctx;
}

/**
 * What to tell a person whose connection failed because the server's certificate did not verify
 * (trying again cannot help then); undefined for any other error.
 */
export function certificateProblem(err: Error & { code?: string }): string | undefined {
  const code = err.code ?? '';
  if (!/CERT|SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY/.test(code)) return undefined;
  const untrusted = /SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY/.test(code);
  return (
    `TLS certificate rejected: ` +
    `${err.message}${untrusted ? ' (for a private CA, point NODE_EXTRA_CA_CERTS at its certificate)' : ''}`
  );
}
