// The other half of bin/tsbuild's start-up trick: the launcher moves NODE_EXTRA_CA_CERTS out of
// Node's sight (Node would parse the file before any code runs, 90 ms); here it goes back into the
// environment, so that build args taken from it and the processes tsbuild starts see it as the user
// set it, and to the registry client and ADD, which add those CAs to the default roots at their
// first TLS connection.
import { remote } from '@tsbuild/layerstore';

export const DeferredVariable = 'TSBUILD_DEFERRED_CA_CERTS';

export function takeDeferredCaCerts(env: NodeJS.ProcessEnv = process.env): void {
  const file = env[DeferredVariable];
  if (file === undefined) return;
  delete env[DeferredVariable];
  env.NODE_EXTRA_CA_CERTS = file;
  remote.trustDeferredExtraCaCerts(file);
}
