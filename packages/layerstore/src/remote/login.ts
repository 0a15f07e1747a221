// docker login / logout: check the credentials against /v2/ first, then write them where
// docker does (credential helper, else auths[host].auth in config.json).
import { parseReference } from '../reference.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { StaticCredentials, dockerConfigPath, storeCredentials } from './credentials.js';

/** Normalise what a person types after `login`: host[:port], a URL, or docker.io. */
function registryName(input: string): string {
  const s = input.replace(/^https?:\/\//i, '').replace(/\/.*$/, '');
  if (s === '' || s === 'index.docker.io' || s === 'registry-1.docker.io') return 'docker.io';
  return parseReference(`${s}/x`).registry;
}

export async function login(
  registry: string,
  username: string,
  password: string,
  opts: Omit<ClientOptions, 'credentials'> & { configFile?: string } = {},
): Promise<void> {
  const name = registryName(registry);
  const client = new RegistryClient(name, {
    ...opts,
    credentials: new StaticCredentials({ [name]: { username, password } }),
  });
  await client.ping();
  await storeCredentials(name, { username, password }, opts.configFile ?? dockerConfigPath());
}

export async function logout(registry: string, opts: { configFile?: string } = {}): Promise<void> {
  await storeCredentials(registryName(registry), undefined, opts.configFile ?? dockerConfigPath());
}
