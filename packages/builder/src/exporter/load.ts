// `--load`: the image handed to a Docker daemon through the Engine API's image-load endpoint
// (POST /images/load), as `docker load` does: the archive (docker's format, which also holds the OCI
// layout) is streamed from the store into the request, never written to disk first. The daemon is
// DOCKER_HOST (unix:// or tcp:// without TLS), else /var/run/docker.sock.
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { archive, type Image, type Store } from '@tsbuild/layerstore';
import { BuildError, UsageError } from '../errors.js';
import type { Reporter } from '../progress/index.js';

type Endpoint = { socketPath: string; shown: string } | { host: string; port: number; shown: string };

/** Where the daemon listens, from DOCKER_HOST as the docker CLI reads it. */
export function dockerEndpoint(env: NodeJS.ProcessEnv = process.env): Endpoint {
  const host = env.DOCKER_HOST || 'unix:///var/run/docker.sock';
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length), shown: host };
  const tcp = /^tcp:\/\/([^:/]+|\[[0-9a-fA-F:]+\]):(\d+)\/?$/.exec(host);
  if (tcp) {
    if (env.DOCKER_TLS_VERIFY || env.DOCKER_CERT_PATH)
      throw new UsageError(`--load: DOCKER_HOST=${host} with TLS (DOCKER_TLS_VERIFY) is not supported`);
    return { host: tcp[1].replace(/^\[|\]$/g, ''), port: Number(tcp[2]), shown: host };
  }
  throw new UsageError(`--load: DOCKER_HOST=${host} is not unix:///PATH or tcp://HOST:PORT`);
}

/** GET /_ping: the daemon is there and answers (checked before the build, as buildx checks its builder). */
export async function pingDocker(signal: AbortSignal): Promise<void> {
  const at = dockerEndpoint();
  try {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request({ ...target(at), method: 'GET', path: '/_ping', headers: { Host: 'docker' }, signal });
      req.once('response', resolve);
      req.once('error', reject);
      req.end();
    });
    const text = await readAll(res);
    if (res.statusCode !== 200) throw new Error(`answered ${res.statusCode}: ${daemonMessage(text)}`);
  } catch (e) {
    throw new BuildError(
      `--load: cannot reach the Docker daemon at ${at.shown}: ${(e as Error).message}`,
      'unavailable',
    );
  }
}

const target = (at: Endpoint) =>
  'socketPath' in at ? { socketPath: at.socketPath } : { host: at.host, port: at.port };

export async function loadIntoDocker(
  store: Store,
  image: Image,
  tags: string[],
  o: { reporter: Reporter; signal: AbortSignal },
): Promise<void> {
  const at = dockerEndpoint();
  const handle = o.reporter.step(`load into the Docker daemon at ${at.shown}`);
  try {
    const named = tags.length ? tags.map((name) => ({ image, name })) : [{ image }];
    const body = await archive.stream(store, named, { format: 'docker' });
    let req!: ClientRequest;
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      req = request({
        ...target(at),
        method: 'POST',
        path: '/images/load?quiet=1',
        headers: { 'Content-Type': 'application/x-tar', Host: 'docker' },
        signal: o.signal,
      });
      req.once('response', resolve);
      req.once('error', reject);
    });
    const sent = pipeline(body, req);
    sent.catch(() => {}); // a daemon that answers early (an error) stops reading: its answer says why
    const res = await response.catch((e: Error) => {
      throw new BuildError(
        `--load: the connection to the Docker daemon at ${at.shown} failed: ${e.message}`,
        'unavailable',
      );
    });
    const text = await readAll(res);
    if (res.statusCode !== 200)
      throw new BuildError(`--load: the Docker daemon answered ${res.statusCode}: ${daemonMessage(text)}`);
    // 200, then one JSON message per line; a failure mid-way is a message with "error".
    for (const line of text.split('\n').filter((l) => l.trim())) {
      let m: { error?: string; stream?: string };
      try {
        m = JSON.parse(line) as typeof m;
      } catch {
        throw new BuildError(`--load: the Docker daemon answered something that is not JSON: ${line.slice(0, 200)}`);
      }
      if (m.error) throw new BuildError(`--load: the Docker daemon refused the image: ${m.error}`);
      if (m.stream?.trim()) handle.log(m.stream.trim());
    }
    await sent;
    handle.done();
  } catch (e) {
    handle.fail((e as Error).message);
    throw e;
  }
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function daemonMessage(text: string): string {
  try {
    return (JSON.parse(text) as { message?: string }).message ?? text.trim();
  } catch {
    return text.trim().slice(0, 500);
  }
}
