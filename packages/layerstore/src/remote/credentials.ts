// Credentials as docker keeps them: $DOCKER_CONFIG/config.json (default ~/.docker/config.json)
// with `auths` (auth = base64 user:pass, or username/password, or identitytoken), `credHelpers`
// (per registry) and `credsStore` (default helper), helpers run as
// `docker-credential-<name> get|store|erase` speaking JSON over stdin/stdout.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '@tsbuild/sys';
import { DockerHub } from '../reference.js';
import { RegistryError } from './errors.js';

export interface Credential {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (docker's identitytoken), exchanged at the token realm. */
  identityToken?: string;
}

export interface DockerConfigFile {
  auths?: Record<
    string,
    { auth?: string; username?: string; password?: string; identitytoken?: string; email?: string }
  >;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [key: string]: unknown;
}

/** Where credentials come from for a registry host (the name as in references: docker.io, localhost:5000). */
export interface CredentialSource {
  get(registry: string): Promise<Credential | undefined>;
}

export const DockerHubAuthKey = 'https://index.docker.io/v1/';

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG || path.join(env.HOME || os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

/** The key docker writes under `auths` for a registry. */
export function authKey(registry: string): string {
  return registry === DockerHub ? DockerHubAuthKey : registry;
}

function candidateKeys(registry: string): string[] {
  if (registry === DockerHub)
    return [
      DockerHubAuthKey,
      'index.docker.io',
      'docker.io',
      'registry-1.docker.io',
      'https://index.docker.io/v1',
      'https://registry-1.docker.io',
    ];
  return [
    registry,
    `https://${registry}`,
    `http://${registry}`,
    `https://${registry}/v1/`,
    `https://${registry}/v2/`,
    `http://${registry}/v1/`,
    `http://${registry}/v2/`,
  ];
}

async function readConfig(file: string): Promise<DockerConfigFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new RegistryError('credentials', `cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as DockerConfigFile;
  } catch (err) {
    throw new RegistryError('credentials', `cannot parse ${file}: ${(err as Error).message}`);
  }
}

/** Run a docker credential helper. */
export function runCredentialHelper(helper: string, action: 'get' | 'store' | 'erase', input: string): Promise<string> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper))
    return Promise.reject(new RegistryError('credentials', `bad credential helper name "${helper}"`));
  const bin = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [action], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let errText = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (b) => {
      if (out.length < 1 << 20) out += b;
    });
    child.stderr.on('data', (b) => {
      if (errText.length < 4096) errText += b;
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(
        new RegistryError(
          'credentials',
          `credential helper ${bin}: ` +
            `${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found on PATH' : err.message}`,
        ),
      );
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else {
        // Helpers print "credentials not found in native keychain" on a miss.
        const msg = (out || errText).trim().slice(0, 300);
        reject(
          Object.assign(
            new RegistryError('credentials', `credential helper ${bin} ${action} exited with ${code}: ${msg}`),
            { notFound: /not found/i.test(msg) },
          ),
        );
      }
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

async function fromHelper(helper: string, registry: string): Promise<Credential | undefined> {
  for (const server of registry === DockerHub ? [DockerHubAuthKey] : [registry, `https://${registry}`]) {
    let out: string;
    try {
      out = await runCredentialHelper(helper, 'get', server);
    } catch (err) {
      if ((err as { notFound?: boolean }).notFound) continue;
      throw err;
    }
    let parsed: { Username?: unknown; Secret?: unknown };
    try {
      parsed = JSON.parse(out);
    } catch {
      throw new RegistryError(
        'credentials',
        `credential helper docker-credential-${helper} printed something that is not JSON`,
      );
    }
    if (typeof parsed.Secret !== 'string' || parsed.Secret === '') continue;
    if (parsed.Username === '<token>') return { identityToken: parsed.Secret };
    return { username: typeof parsed.Username === 'string' ? parsed.Username : '', password: parsed.Secret };
  }
  return undefined;
}

/** Credentials from a docker config.json, read fresh on every lookup (docker login may run meanwhile). */
export class DockerConfigCredentials implements CredentialSource {
  readonly file: string;
  constructor(file?: string) {
    this.file = file ?? dockerConfigPath();
  }
  async get(registry: string): Promise<Credential | undefined> {
    const config = await readConfig(this.file);
    const helper =
      config.credHelpers?.[registry] ?? (registry === DockerHub ? config.credHelpers?.[DockerHubAuthKey] : undefined);
    if (helper) return fromHelper(helper, registry);
    if (config.credsStore) {
      const c = await fromHelper(config.credsStore, registry);
      if (c) return c;
    }
    const auths = config.auths ?? {};
    for (const key of candidateKeys(registry)) {
      const entry = auths[key];
      if (!entry || typeof entry !== 'object') continue;
      if (typeof entry.identitytoken === 'string' && entry.identitytoken) return { identityToken: entry.identitytoken };
      if (typeof entry.auth === 'string' && entry.auth) {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0)
          throw new RegistryError('credentials', `${this.file}: auths["${key}"].auth is not base64 of user:password`);
        return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
      }
      if (typeof entry.username === 'string' && typeof entry.password === 'string')
        return { username: entry.username, password: entry.password };
    }
    return undefined;
  }
}

/** A fixed set of credentials, e.g. from flags or tests. */
export class StaticCredentials implements CredentialSource {
  constructor(private readonly byRegistry: Record<string, Credential>) {}
  async get(registry: string): Promise<Credential | undefined> {
    return this.byRegistry[registry];
  }
}

export const noCredentials: CredentialSource = { get: async () => undefined };

/** Write (or erase) a registry's credentials where docker would: its helper, else auths[key].auth. */
export async function storeCredentials(
  registry: string,
  cred: { username: string; password: string } | undefined,
  file = dockerConfigPath(),
): Promise<void> {
  const config = await readConfig(file);
  const helper = config.credHelpers?.[registry] ?? config.credsStore;
  const server = authKey(registry);
  if (helper) {
    if (cred)
      await runCredentialHelper(
        helper,
        'store',
        JSON.stringify({ ServerURL: server, Username: cred.username, Secret: cred.password }),
      );
    else {
      try {
        await runCredentialHelper(helper, 'erase', server);
      } catch (err) {
        if (!(err as { notFound?: boolean }).notFound) throw err;
      }
    }
    // docker keeps an empty entry so that `docker info` lists the registry; drop it on logout.
    config.auths = config.auths ?? {};
    if (cred) config.auths[server] = {};
    else delete config.auths[server];
  } else {
    config.auths = config.auths ?? {};
    if (cred) config.auths[server] = { auth: Buffer.from(`${cred.username}:${cred.password}`).toString('base64') };
    else for (const key of candidateKeys(registry)) delete config.auths[key];
  }
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  // Durable: losing a login to a crash would be a surprise; the file holds secrets, so 0600 from the start.
  await writeFileAtomic(file, JSON.stringify(config, null, '\t') + '\n', { mode: 0o600, durable: true });
}
