// The other half of bin/tsbuild's start-up trick: the launcher moves NODE_EXTRA_CA_CERTS out of
// Node's sight (Node would parse the file before any code runs, 90 ms); here it goes back into the
// environment, so that build args taken from it and the processes tsbuild starts see it as the user
// set it, and to the registry client and ADD, which add those CAs to the default roots at their
// first TLS connection. The registry client is loaded here only when a command runs: imported at the
// top, it made `tsbuild --version` and `--help` set up the whole store library (6 ms of their 30).

export const DeferredVariable = 'TSBUILD_DEFERRED_CA_CERTS';

export async function takeDeferredCaCerts(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const file = env[DeferredVariable];
  if (file === undefined) return;
  delete env[DeferredVariable];
  env.NODE_EXTRA_CA_CERTS = file;
  const { remote } = await import('@tsbuild/layerstore');
  remote.trustDeferredExtraCaCerts(file);
}
