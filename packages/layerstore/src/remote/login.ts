// docker login / logout: check the credentials against /v2/ first, then write them where
// docker does (credential helper, else auths[host].auth in config.json).
import { redactCredentials } from '@tsbuild/errdefs';
import { DockerHub, hostPattern } from '../reference.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { StaticCredentials, dockerConfigPath, storeCredentials } from './credentials.js';

const DockerHubAddress = 'https://index.docker.io/v1/';

/**
 * What a person types after `login` / `logout` (host[:port], host/path, an http(s) URL, empty for
 * Docker Hub), the one normalisation of it: `registry` as references name it (docker.io for Hub and
 * its aliases), which credentials are stored under, and `address` as docker prints it (the host as
 * typed; Hub's v1 address when empty). Credentials in it (user:password@) are refused, never echoed.
 */
export function registryName(input: string): { registry: string; address: string } {
  const shown = redactCredentials(input);
  if (shown !== input) throw new Error(`"${shown}" holds credentials (user:password@)`);
  if (input === '') return { registry: DockerHub, address: DockerHubAddress };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input) && !/^https?:\/\//i.test(input))
    throw new Error(`"${input}": a registry is a host[:port] or an http(s) URL`);
  // As docker's ConvertToHostname: the scheme and everything from the first slash go.
  const address = input.replace(/^https?:\/\//i, '').replace(/\/.*$/s, '');
  if (!hostPattern.test(address)) throw new Error(`"${input}": bad registry host "${address}"`);
  const hub = ['docker.io', 'index.docker.io', 'registry-1.docker.io'].includes(address.toLowerCase());
  return { registry: hub ? DockerHub : address, address };
}

export async function login(
  registry: string,
  username: string,
  password: string,
  opts: Omit<ClientOptions, 'credentials'> & { configFile?: string } = {},
): Promise<void> {
  const { registry: name } = registryName(registry);
  const client = new RegistryClient(name, {
    ...opts,
    credentials: new StaticCredentials({ [name]: { username, password } }),
  });
  await client.ping();
  await storeCredentials(name, { username, password }, opts.configFile ?? dockerConfigPath());
}

export async function logout(registry: string, opts: { configFile?: string } = {}): Promise<void> {
  await storeCredentials(registryName(registry).registry, undefined, opts.configFile ?? dockerConfigPath());
}
