// Manifests and indexes on the wire: GET with the Accept list, validation of the untrusted
// bytes (size, digest, JSON shape), platform selection in an index, and PUT with the exact
// content type.
import { MediaType, type Descriptor, type Digest, type Manifest } from '../types.js';
import { isDigest, sha256 } from '../digest.js';
import { choosePlatform as pickPlatform, type Platform } from '../platform.js';
import type { RegistryClient } from './client.js';
import { RegistryError } from './errors.js';
import { discard, readBody } from './transport.js';

export const maxManifestSize = 4 * 1024 * 1024;

export const manifestMediaTypes: readonly string[] = [MediaType.OciManifest, MediaType.DockerManifest];
export const indexMediaTypes: readonly string[] = [MediaType.OciIndex, MediaType.DockerManifestList];
export const acceptManifests = [...manifestMediaTypes, ...indexMediaTypes].join(', ');

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface FetchedManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
  /** Set when mediaType is a manifest. */
  manifest?: Manifest;
  /** Set when mediaType is an index / manifest list. */
  index?: Index;
}

export type { Platform };

export function parsePlatform(p: string | Platform | undefined): Platform {
  if (p === undefined) return { os: 'linux', architecture: 'amd64' };
  if (typeof p !== 'string') return p;
  const [os, architecture, variant] = p.split('/');
  if (!os || !architecture) throw new RegistryError('invalid', `bad platform "${p}" (want os/arch[/variant])`);
  return { os, architecture, variant };
}

export { sha256 };

function checkDescriptor(d: unknown, where: string): Descriptor {
  const x = d as Descriptor;
  if (!x || typeof x !== 'object') throw new Error(`${where} is not an object`);
  if (typeof x.mediaType !== 'string' || x.mediaType.length > 255) throw new Error(`${where}.mediaType is missing`);
  if (!isDigest(x.digest)) throw new Error(`${where}.digest is not a sha256 digest`);
  if (!Number.isSafeInteger(x.size) || x.size < 0) throw new Error(`${where}.size is not a non-negative integer`);
  return x;
}

/** Check the shape of manifest or index bytes; `contentType` is what the registry said. */
export function parseManifestBytes(
  bytes: Buffer,
  contentType: string | undefined,
): { mediaType: string; manifest?: Manifest; index?: Index } {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error('not JSON');
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error('not a JSON object');
  if (json.schemaVersion === 1) throw new Error('docker schema 1 manifests are not supported');
  if (json.schemaVersion !== 2) throw new Error(`schemaVersion ${String(json.schemaVersion)} is not 2`);
  const declared = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  const ct = contentType?.split(';')[0]!.trim();
  let mediaType = declared ?? (ct && [...manifestMediaTypes, ...indexMediaTypes].includes(ct) ? ct : undefined);
  if (!mediaType) mediaType = Array.isArray(json.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
  if (indexMediaTypes.includes(mediaType)) {
    if (!Array.isArray(json.manifests)) throw new Error('index without a manifests array');
    json.manifests.forEach((m, i) => checkDescriptor(m, `manifests[${i}]`));
    return { mediaType, index: json as unknown as Index };
  }
  if (!manifestMediaTypes.includes(mediaType)) throw new Error(`unsupported media type ${mediaType}`);
  checkDescriptor(json.config, 'config');
  if (!Array.isArray(json.layers)) throw new Error('manifest without a layers array');
  json.layers.forEach((l, i) => checkDescriptor(l, `layers[${i}]`));
  return { mediaType, manifest: json as unknown as Manifest };
}

/** GET a manifest or index by tag or digest and validate it. */
export async function getManifest(
  client: RegistryClient,
  repository: string,
  reference: string,
  expected?: Descriptor,
): Promise<FetchedManifest> {
  const what =
    `fetching manifest ` + `${client.registry}/${repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
  return client.retry(what, async () => {
    const res = await client.request(
      {
        method: 'GET',
        url: `/v2/${repository}/manifests/${reference}`,
        headers: { accept: acceptManifests },
        scopes: [`repository:${repository}:pull`],
        redirects: true,
      },
      what,
    );
    await client.check(res, [200], what, reference);
    const bytes = await readBody(res, maxManifestSize, what);
    const digest = sha256(bytes);
    const fail = (msg: string) =>
      new RegistryError('invalid', `${what}: ${msg}`, { host: client.host, subject: reference });
    if (reference.startsWith('sha256:') && digest !== reference) throw fail(`content has digest ${digest}`);
    if (expected && (digest !== expected.digest || bytes.length !== expected.size))
      throw fail(`content (${digest}, ${bytes.length} bytes) does not match its descriptor`);
    const header = res.headers['docker-content-digest'];
    if (typeof header === 'string' && header.startsWith('sha256:') && header !== digest)
      throw fail(`Docker-Content-Digest ${header} does not match the content (${digest})`);
    let parsed;
    try {
      parsed = parseManifestBytes(bytes, res.headers['content-type']);
    } catch (err) {
      throw fail((err as Error).message);
    }
    return { digest, bytes, ...parsed };
  });
}

/**
 * Pick the entry for a platform from an index (platform.ts has the rule); attestations (unknown/unknown) never match.
 */
export function choosePlatform(index: Index, platform: Platform): Descriptor | undefined {
  const candidates = index.manifests.filter(
    (m) => manifestMediaTypes.includes(m.mediaType) || indexMediaTypes.includes(m.mediaType),
  );
  return pickPlatform(candidates, platform);
}

/** Does the registry have this manifest? HEAD by tag or digest; returns its descriptor or undefined. */
export async function headManifest(
  client: RegistryClient,
  repository: string,
  reference: string,
): Promise<Descriptor | undefined> {
  const what = `checking manifest ${client.registry}/${repository}:${reference}`;
  return client.retry(what, async () => {
    const res = await client.request(
      {
        method: 'HEAD',
        url: `/v2/${repository}/manifests/${reference}`,
        headers: { accept: acceptManifests },
        scopes: [`repository:${repository}:pull`],
        redirects: true,
      },
      what,
    );
    discard(res);
    if (res.status === 404) return undefined;
    await client.check(res, [200], what, reference);
    const digest = res.headers['docker-content-digest'];
    const size = Number(res.headers['content-length']);
    if (!isDigest(digest) || !Number.isSafeInteger(size)) return undefined;
    return { mediaType: (res.headers['content-type'] ?? '').split(';')[0], digest, size };
  });
}

/** PUT a manifest or index under a tag (or its digest). */
export async function putManifest(
  client: RegistryClient,
  repository: string,
  reference: string,
  bytes: Buffer,
  mediaType: string,
): Promise<Digest> {
  const digest = sha256(bytes);
  const what = `pushing manifest ${digest} to ${client.registry}/${repository}:${reference}`;
  return client.retry(what, async () => {
    const res = await client.request(
      {
        method: 'PUT',
        url: `/v2/${repository}/manifests/${reference}`,
        headers: { 'content-type': mediaType },
        body: bytes,
        scopes: [`repository:${repository}:pull,push`],
      },
      what,
    );
    await client.check(res, [200, 201], what, digest);
    discard(res);
    const header = res.headers['docker-content-digest'];
    if (typeof header === 'string' && header.startsWith('sha256:') && header !== digest) {
      throw new RegistryError('invalid', `${what}: the registry stored it as ${header}`, {
        host: client.host,
        subject: digest,
      });
    }
    return digest;
  });
}
