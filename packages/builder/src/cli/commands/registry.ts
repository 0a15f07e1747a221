// Registry commands: pull, push, login, logout — and the pull helper `build` uses for an
// implicit FROM pull (push itself is exporter/push.ts). Talks to registries through @tsbuild/layerstore's `remote`.
// Insecure registries (loopback, --insecure-registry) as docker has them: HTTPS unverified, else plain HTTP.
// Credentials come from $DOCKER_CONFIG/config.json and never appear in output or errors.
import {
  formatReference,
  familiarName,
  parseReference,
  remote,
  type Digest,
  type Image,
  type Store,
} from '@tsbuild/layerstore';
import { bool, list, parseArgs, str } from '../args.js';
import { flagsOf } from '../flags.js';
import { trace } from '../../trace.js';
import { openStore } from '../root.js';
import { createReporter, type ProgressMode, type Reporter } from '../../progress/index.js';
import { BuildError, UsageError } from '../../errors.js';
import { parseCompression, parseCompressionLevel, parseInsecureRegistries } from '../../options.js';
import { parseRef, pushImage, remoteOptions } from '../../exporter/push.js';

type TransferStats = remote.TransferStats;

const short = (d: string) => d.replace(/^sha256:/, '').slice(0, 12);

export function describeStats(s: TransferStats, direction: 'pull' | 'push'): string {
  return direction === 'pull'
    ? `downloaded ${s.blobsDownloaded} blobs (${s.bytesDownloaded} bytes), ${s.blobsSkipped} already in the ` +
        `store${s.resumes ? `, ${s.resumes} resumed` : ''}`
    : `uploaded ${s.blobsUploaded} blobs (${s.bytesUploaded} bytes), mounted ${s.blobsMounted}, ${s.blobsSkipped} ` +
        `already in the registry${s.resumes ? `, ${s.resumes} resumed` : ''}, ${s.layersCompressed} layers compressed`;
}

/**
 * Pulls `ref` (tag or digest) into the store, for `platform` (default the host's), and tags it there
 * under its full name: the image, or the index it was chosen from with that platform's image in the store.
 * Progress goes to the reporter as one step; a failure is thrown as the RegistryError.
 */
export async function pullImage(
  store: Store,
  ref: string,
  o: {
    insecure: string[];
    platform?: string;
    reporter: Reporter;
    label?: string;
    /**
     * A build's base (not --pull): a tag the store has is moved only onto what still holds it (the
     * registry's index over the image it names); one naming something else (a local build, another
     * index) is left alone, and the pulled image is used untagged. Moving it would drop that image.
     */
    keepTag?: boolean;
    /** The command's (Ctrl-C): stops the pull. */
    signal?: AbortSignal;
  },
): Promise<{ image: Image; name: string; digest: string; stats: TransferStats; upToDate: boolean }> {
  const parsed = parseReference(ref);
  const name = formatReference(parsed);
  const handle = o.reporter.step(o.label ?? `pull ${familiarName(parsed)}`);
  try {
    const before = await store.tags.get(name).catch(() => undefined);
    const result = await remote.pull(store.blobs, parsed, {
      ...(await remoteOptions(store, o.insecure, o.signal)),
      platform: o.platform,
      onLayer: (layer, i) => handle.log(`layer ${i + 1} ${short(layer.digest)} (${layer.size} bytes) in the store`),
    });
    const image: Image = {
      manifestDigest: result.manifestDigest,
      manifest: result.manifest,
      configDigest: result.configDigest,
      config: result.config,
      layers: result.layers,
    };
    // From an index, the tag names the index (as containerd and docker's containerd store keep it):
    // the platforms pulled before stay, and each build or run picks its own (readImage).
    const index = result.index && { ...result.index, size: await store.blobs.size(result.index.digest) };
    const pulled = index?.digest ?? result.manifestDigest;
    const keep = o.keepTag && before && before.digest !== pulled && !(index && (await holds(store, index, before)));
    if (keep)
      o.reporter.warn(
        `${familiarName(parsed)}: the store's tag names another image (${before.digest}) than the registry's ` +
          `(${pulled}); the ${o.platform ?? 'host'} image was pulled for this build and the tag left as it is`,
      );
    const desc = keep
      ? before
      : index?.size
        ? await store.images.tagDescriptor(name, { mediaType: index.mediaType, digest: index.digest, size: index.size })
        : await store.images.tag(name, image);
    handle.log(`digest: ${result.index?.digest ?? result.manifestDigest}`);
    handle.done();
    return {
      image,
      name,
      digest: desc.digest,
      stats: result.stats,
      upToDate: before?.digest === desc.digest && result.stats.blobsDownloaded === 0,
    };
  } catch (e) {
    handle.fail((e as Error).message);
    throw e;
  }
}

/** Whether an index in the store lists `d` (the manifest a tag named) among its entries. */
async function holds(store: Store, index: { digest: string }, d: { digest: string }): Promise<boolean> {
  const doc = JSON.parse((await store.blobs.read(index.digest as Digest)).toString('utf8')) as {
    manifests?: { digest?: string }[];
  };
  return Array.isArray(doc.manifests) && doc.manifests.some((m) => m.digest === d.digest);
}

function reporterFor(p: ReturnType<typeof parseArgs>) {
  const progress = (str(p, 'progress') ?? 'auto') as ProgressMode;
  if (!['auto', 'tty', 'plain', 'quiet'].includes(progress))
    throw new UsageError(`--progress: "${progress}" is not one of auto, tty, plain, quiet`);
  return createReporter(bool(p, 'quiet') ? 'quiet' : progress);
}

export async function pullCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const p = parseArgs(argv, flagsOf('pull'));
  if (p.positionals.length !== 1)
    throw new UsageError(
      '"tsbuild pull" requires exactly 1 argument\n' +
        'Usage: tsbuild pull [--platform os/arch] [--insecure-registry HOST|CIDR] NAME[:TAG|@DIGEST]',
    );
  const ref = p.positionals[0];
  parseRef(ref, 'pull');
  const insecure = parseInsecureRegistries(list(p, 'insecure-registry'));
  const platform = str(p, 'platform');
  if (platform !== undefined) {
    try {
      remote.parsePlatform(platform);
    } catch (e) {
      throw new UsageError(`--platform ${platform}: ${(e as Error).message}`);
    }
  }
  const store = await openStore(str(p, 'root'), 'pull');
  const reporter = await reporterFor(p);
  trace('pull: store open');
  try {
    const r = await pullImage(store, ref, { insecure, platform, reporter, signal });
    trace('pull: done');
    reporter.close();
    const shown = familiarName(parseReference(ref));
    reporter.info(describeStats(r.stats, 'pull'));
    process.stdout.write(
      `Digest: ${r.digest}\nStatus: ` +
        `${r.upToDate ? 'Image is up to date for' : 'Downloaded newer image for'} ${shown}\n${shown}\n`,
    );
    return 0;
  } finally {
    reporter.close();
  }
}

export async function pushCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const p = parseArgs(argv, flagsOf('push'));
  if (p.positionals.length !== 1)
    throw new UsageError(
      '"tsbuild push" requires exactly 1 argument\n' +
        'Usage: tsbuild push [--insecure-registry HOST|CIDR] [--compression gzip|zstd|none] NAME[:TAG]',
    );
  const compression = parseCompression(str(p, 'compression'));
  const levelFlag = str(p, 'compression-level');
  const level =
    levelFlag === undefined ? undefined : parseCompressionLevel(levelFlag, compression, '--compression-level');
  const force = bool(p, 'force-compression');
  const ref = p.positionals[0];
  const parsed = parseRef(ref, 'push');
  const insecure = parseInsecureRegistries(list(p, 'insecure-registry'));
  const store = await openStore(str(p, 'root'), 'push');
  const reporter = await reporterFor(p);
  try {
    const r = await pushImage(store, ref, { insecure, reporter, compression, level, force, signal });
    reporter.close();
    reporter.info(describeStats(r.stats, 'push'));
    process.stdout.write(`${parsed.tag ?? parsed.digest}: digest: ${r.descriptor.digest} size: ${r.descriptor.size}\n`);
    return 0;
  } finally {
    reporter.close();
  }
}

export async function loginCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('login'));
  if (p.positionals.length !== 1)
    throw new UsageError(
      '"tsbuild login" requires exactly 1 argument\n' +
        'Usage: tsbuild login [-u USER] [-p PASS | --password-stdin] REGISTRY',
    );
  const { registry, address } = serverAddress(p.positionals[0], 'login');
  const insecure = parseInsecureRegistries(list(p, 'insecure-registry'));
  const username = str(p, 'username');
  let password = str(p, 'password');
  if (password !== undefined && bool(p, 'password-stdin'))
    throw new UsageError('--password and --password-stdin are mutually exclusive');
  if (bool(p, 'password-stdin')) {
    if (!username) throw new UsageError('--password-stdin needs --username (-u)');
    password = (await readAll(process.stdin)).replace(/\r?\n$/, '');
  } else if (password !== undefined) {
    process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  }
  if (!username || password === undefined)
    throw new UsageError('"tsbuild login" needs -u USER and -p PASS or --password-stdin (no interactive prompt)');
  if (password === '') throw new UsageError('the password is empty');
  await remote.login(address, username, password, { insecure }).catch((e: Error) => {
    throw new BuildError(`login to ${registry} failed: ${e.message}`);
  });
  process.stdout.write('Login Succeeded\n');
  return 0;
}

export async function logoutCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('logout'));
  if (p.positionals.length > 1)
    throw new UsageError('"tsbuild logout" requires at most 1 argument\nUsage: tsbuild logout [REGISTRY]');
  // As docker: no registry (or an empty one) is Docker Hub.
  const { address } = serverAddress(p.positionals[0] ?? '', 'logout');
  await remote.logout(address);
  process.stdout.write(`Removing login credentials for ${address}\n`);
  return 0;
}

/**
 * The registry of login/logout (remote.registryName: as references name it, and as docker prints it).
 * A bad one is a usage error (exit 2); user:password@host is refused without the password: credentials
 * go in -u and -p or --password-stdin, never in the registry name.
 */
function serverAddress(arg: string, command: string): { registry: string; address: string } {
  try {
    return remote.registryName(arg);
  } catch (e) {
    const { message } = e as Error;
    const hint = /holds credentials/.test(message) ? '; give them with -u and -p or --password-stdin' : '';
    throw new UsageError(`${command}: REGISTRY ${message}${hint}`);
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}
