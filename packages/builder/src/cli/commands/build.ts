// `tsbuild build` (and bare `tsbuild [OPTIONS] CONTEXT`), with docker build's flags.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, posix, resolve, join } from 'node:path';
import { bool, buildArgs, list, parseArgs, readStdin, str, type Parsed } from '../args.js';
import { stdinContext } from '../stdin-context.js';
import { flagsOf } from '../flags.js';
import {
  checkDockerArchiveCompression,
  parseCompression,
  parseCompressionLevel,
  parseCsv,
  parseInsecureRegistries,
  refuseDigestTag,
} from '../../options.js';
import { openStore, storeRoot } from '../root.js';
import { build, dryRun, type BuildRequest } from '../../solver/build.js';
import { createReporter, type ProgressMode } from '../../progress/index.js';
import type { Output } from '../../exporter/outputs.js';
import type { CacheRef } from '../../exporter/cache-share.js';
import type { EarlyPush, PushCompression } from '../../exporter/push.js';
import {
  formatPlatform,
  formatReference,
  hostPlatform,
  MediaType,
  parseReference,
  Store,
  type Compression,
  type Descriptor,
  type Image,
  type Platform,
} from '@tsbuild/layerstore';
import { emulationProblem, isNative } from '../../solver/emulation.js';
import { parseSsh, startAgents, type SshAgents } from '../../solver/ssh.js';
import { writeFileAtomic } from '@tsbuild/sys';
import {
  parseAddHosts,
  parseAnnotations,
  parseBuildContexts,
  type Annotations,
  parseLabels,
  parseShmSize,
  parsePlatforms,
  parseUlimits,
} from '../buildx-options.js';
import { BuildError, UsageError } from '../../errors.js';
import { BuildContext, readControlFile, statCacheDir, type ContextStart } from '../../context/context.js';
import { takeEarlyWalk } from '../../context/early.js';

// Outputs, registries, the shared cache and --explain are loaded only by a build that uses them: most
// rebuilds use none, and their modules (archives, layouts, the registry client) cost start-up.
const outputsModule = () => import('../../exporter/outputs.js');
const registryModule = () => import('./registry.js');
const pushModule = () => import('../../exporter/push.js');
const cacheShareModule = () => import('../../exporter/cache-share.js');
const loadModule = () => import('../../exporter/load.js');
const explainModule = () => import('../explain.js'); // and chalk, which probes the terminal as it loads

export const buildFlags = flagsOf('build');

export async function buildCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const p = parseArgs(argv, buildFlags);
  if (p.positionals.length !== 1)
    throw new UsageError(
      `"tsbuild build" requires exactly 1 argument (the build context), got ${p.positionals.length}\n` +
        `Usage: tsbuild build [OPTIONS] PATH`,
    );
  if (p.positionals[0] === '-') {
    const stdin = await stdinContext(str(p, 'file'), storeRoot(str(p, 'root')));
    try {
      p.positionals[0] = stdin.dir;
      if (stdin.dockerfileText !== undefined) p.flags.set('file', '-');
      // In an archive, -f names a file of the archive (docker's), not one of the working directory.
      // (`..` stops at its root, as a path in the archive).
      else if (str(p, 'file') !== undefined)
        p.flags.set('file', join(stdin.dir, posix.normalize(`/${str(p, 'file')}`)));
      return await buildParsed(p, signal, { dockerfileText: stdin.dockerfileText });
    } finally {
      // The build's result is the build's: a copy left behind is said, and the next Store.open removes it.
      try {
        stdin.cleanup();
      } catch (e) {
        process.stderr.write(`WARNING: context "-": cannot remove its unpacked copy: ${(e as Error).message}\n`);
      }
    }
  }
  return buildParsed(p, signal);
}

/** `stdin`: the context was "-"; its `dockerfileText` is the Dockerfile (-f -) when stdin held one. */
async function buildParsed(p: Parsed, signal: AbortSignal, stdin?: { dockerfileText?: string }): Promise<number> {
  const contextDir = resolve(p.positionals[0]);
  // Sync, like the store's small reads (SmallFileIO in layerstore's fsutil.ts): a thread-pool round trip costs more.
  const st = statOrUndefined(contextDir);
  if (!st?.isDirectory()) {
    const given = p.positionals[0];
    // What docker would fetch (its urlutil: a URL, git@..., github.com/...): said as such, not as a missing path.
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(given) || /^(git@|github\.com\/)/.test(given))
      throw new UsageError(
        `build context "${given}": a URL or git repository is not supported ` +
          '(give a directory, or - for a tar on stdin)',
      );
    throw new UsageError(`build context "${given}" ${st ? 'is not a directory' : 'not found'}`);
  }

  const args = buildArgs(list(p, 'build-arg'));
  const tags = list(p, 'tag');
  for (const t of tags) {
    try {
      parseReference(t);
    } catch (e) {
      throw new UsageError(`-t ${t}: ${(e as Error).message}`);
    }
    refuseDigestTag(t, `-t ${t}`);
  }
  // An empty value (`--network "$NET"` with NET unset) is the default, as docker build takes it; so is --target's.
  const network = str(p, 'network') || 'default';
  if (!['default', 'none', 'host'].includes(network))
    throw new UsageError(`--network: "${network}" is not one of default, none, host`);
  // Entitlements, as buildx takes them: the host's network is never given to a Dockerfile unasked.
  const allow = new Set(
    list(p, 'allow')
      .flatMap((a) => a.split(','))
      .map((a) => a.trim())
      .filter(Boolean),
  );
  for (const a of allow) {
    if (a === 'security.insecure')
      throw new UsageError(
        '--allow security.insecure: not supported (tsbuild never grants full privileges to a build step)',
      );
    if (a !== 'network.host') throw new UsageError(`--allow: unknown entitlement "${a}" (only network.host)`);
  }
  if (network === 'host' && !allow.has('network.host'))
    throw new UsageError('--network host: the host network must be allowed explicitly with --allow network.host');
  const progress = (str(p, 'progress') ?? 'auto') as ProgressMode;
  if (!['auto', 'tty', 'plain', 'quiet'].includes(progress))
    throw new UsageError(`--progress: "${progress}" is not one of auto, tty, plain, quiet`);
  const compression = parseCompression(str(p, 'compression'));
  const host = hostPlatform();
  const platforms = str(p, 'platform') ? parsePlatforms(str(p, 'platform')!) : [host];
  const labels = parseLabels(list(p, 'label'));
  const annotationsFor = (pl: Platform) =>
    parseAnnotations(list(p, 'annotation'), formatPlatform(pl), platforms.length > 1);
  annotationsFor(platforms[0]);
  const shm = str(p, 'shm-size');
  const run = {
    extraHosts: parseAddHosts(list(p, 'add-host')),
    rlimits: parseUlimits(list(p, 'ulimit')),
    shmSize: shm === undefined ? undefined : parseShmSize(shm),
  };
  const metadataFile = str(p, 'metadata-file');
  // Checked before the build: a missing directory was Node's ENOENT after it, the image already tagged.
  const iid = str(p, 'iidfile');
  if (iid && !statOrUndefined(dirname(resolve(iid)))?.isDirectory())
    throw new UsageError(`--iidfile ${iid}: no directory ${dirname(resolve(iid))} to write it in`);
  const buildRef = `tsbuild/local/${newBuildId()}`;
  const pull = bool(p, 'pull');
  const namedContexts = parseBuildContexts(list(p, 'build-context'));
  const outputFlags = list(p, 'output');
  const { parseOutput, exportImage, checkOutputs } = outputFlags.length
    ? await outputsModule()
    : { parseOutput: undefined, exportImage: undefined, checkOutputs: undefined };
  const parsedOutputs: Output[] = outputFlags.map((o) => parseOutput!(o));
  // An archive on stdout (-o -, dest=-): then nothing else is written there. The progress and the
  // "writing image" line go to stderr anyway; -q's image ID is not printed (as docker build -q -o - does).
  const stdoutTaken = checkOutputs?.(parsedOutputs) ?? false;
  // -o type=docker without dest= is --load, as in buildx. type=image and type=cacheonly write no file (below).
  const outputs = parsedOutputs.filter(
    (o) => (o.type !== 'docker' || o.dest) && o.type !== 'image' && o.type !== 'cacheonly',
  );
  // --load: a bad DOCKER_HOST, or no daemon there, is said before the build, not after it.
  const toDocker = parsedOutputs.some((o) => o.type === 'docker' && !o.dest);
  const load = bool(p, 'load') || toDocker ? await loadModule() : undefined;
  await load?.pingDocker(signal);
  for (const o of outputs) if (o.type === 'docker') checkDockerArchiveCompression(compression, `--output ${o.dest}`);
  const secrets = new Map<string, { file?: string; env?: string }>();
  for (const s of list(p, 'secret')) {
    const kv = parseCsv(s, '--secret');
    const id = kv.get('id');
    if (!id) throw new UsageError(`--secret ${s}: id= is required`);
    const src = kv.get('src') ?? kv.get('source');
    const env = kv.get('env');
    if (src) secrets.set(id, { file: resolve(src) });
    else secrets.set(id, { env: env ?? id.toUpperCase() });
  }
  const sshSources = parseSsh(list(p, 'ssh'));
  // Registries (registry.ts, exporter/push.ts, exporter/cache-share.ts): --push, --cache-to/--cache-from,
  // --insecure-registry.
  // An empty --cache-from ("$CACHE_FROM" unset in a CI script) names no source: docker build ignores it.
  const cacheFromValues = list(p, 'cache-from').filter((v) => v !== '');
  const cacheShare = list(p, 'cache-to').length || cacheFromValues.length ? await cacheShareModule() : undefined;
  const cacheTo = list(p, 'cache-to').map((v) => cacheShare!.parseCacheOption(v, '--cache-to'));
  const cacheFrom = cacheFromValues.map((v) => cacheShare!.parseCacheOption(v, '--cache-from'));
  const insecure = parseInsecureRegistries(list(p, 'insecure-registry'));
  // --compression-level and --force-compression: for every push whose output does not say its own.
  const levelFlag = str(p, 'compression-level');
  if (levelFlag !== undefined) parseCompressionLevel(levelFlag, compression, '--compression-level');
  const { storeTags, pushes, pushInsecure } = imageOutputs(
    parsedOutputs,
    outputFlags,
    tags,
    bool(p, 'push'),
    insecure,
    {
      compression,
      level: levelFlag,
      force: bool(p, 'force-compression'),
    },
  );
  // --explain[=text|json] [--explain-file FILE]: the report of every step (cli/explain.ts, docs/explain.md).
  const explainFile = str(p, 'explain-file');
  const explain = str(p, 'explain') ?? (explainFile ? 'json' : undefined);
  if (explain !== undefined && explain !== 'text' && explain !== 'json')
    throw new UsageError(`--explain=${explain}: not one of text, json`);
  if (explain === 'json' && !explainFile && bool(p, 'quiet'))
    throw new UsageError('-q and --explain=json both print on stdout: give the JSON a file with --explain-file FILE');
  if (stdoutTaken && explain !== undefined && !explainFile)
    throw new UsageError('--output to stdout and --explain both print on stdout: give --explain-file FILE');
  const dry = bool(p, 'dry-run');
  const epochText = process.env.SOURCE_DATE_EPOCH;
  let sourceDateEpoch: number | undefined;
  if (epochText !== undefined && epochText !== '') {
    if (!/^\d+$/.test(epochText)) throw new UsageError(`SOURCE_DATE_EPOCH="${epochText}" is not a number of seconds`);
    sourceDateEpoch = Number(epochText);
  }

  const fileFlag = str(p, 'file');
  let dockerfilePath: string;
  let dockerfileText: string;
  if (fileFlag === '-') {
    dockerfilePath = '<stdin>';
    dockerfileText = stdin?.dockerfileText ?? (await readStdin());
  } else {
    dockerfilePath = fileFlag ? resolve(fileFlag) : join(contextDir, 'Dockerfile');
    try {
      dockerfileText = readControlFile(contextDir, dockerfilePath);
    } catch (e) {
      if (e instanceof BuildError) throw new UsageError(e.message);
      throw new UsageError(`cannot read Dockerfile ${dockerfilePath}${fileFlag ? ' (from -f)' : ''}`);
    }
  }

  if (bool(p, 'check'))
    return (await import('../checks.js')).checkDockerfile({
      root: str(p, 'root'),
      dockerfilePath,
      dockerfileText,
      buildArgs: args,
    });
  // Several platforms make one image index (tagged, and pushed as one reference with --push); what
  // takes one image (outputs, --load, the image id, the cache export) is refused for it.
  if (platforms.length > 1) {
    // -o type=image names and pushes the index, as -t and --push do.
    const one = ['output', 'load', 'iidfile', 'cache-to'].find((f) =>
      f === 'load'
        ? bool(p, f)
        : f === 'output'
          ? outputs.length || toDocker
          : f === 'cache-to'
            ? list(p, f).length
            : str(p, f),
    );
    if (one) throw new UsageError(`--${one} cannot be used with several platforms (--platform ${str(p, 'platform')})`);
  }
  // A dry run reports one build's keys: for several platforms that would be several reports.
  if (dry && platforms.length > 1)
    throw new UsageError(`--dry-run reports one platform's build: give one --platform (not ${str(p, 'platform')})`);
  // The context's .dockerignore is read and its listing started now, before the store is opened: the
  // walk of a large context is most of a cached rebuild, and it runs while the build is set up.
  const started = BuildContext.start(
    contextDir,
    fileFlag !== '-' ? dockerfilePath : undefined,
    // A context from stdin is a directory made for this build only: no stat cache to keep for it.
    stdin ? undefined : statCacheDir(storeRoot(str(p, 'root'))),
    undefined,
    takeEarlyWalk(),
  );
  if (dry)
    return dryRunCommand({
      context: started,
      p,
      contextDir,
      dockerfilePath,
      dockerfileIsFile: fileFlag !== '-',
      dockerfileText,
      args,
      network: network as 'default' | 'none' | 'host',
      allowNetworkHost: allow.has('network.host'),
      secrets,
      sourceDateEpoch,
      cacheFrom: bool(p, 'no-cache') ? [] : cacheFrom,
      cacheShare,
      insecure,
      explain: explain ?? 'text',
      explainFile,
      signal,
      // What shapes keys and base images as in the build (--add-host/--ulimit/--shm-size are in RUN keys).
      run,
      namedContexts,
      platform: platforms[0],
    });
  const store = await orCancel(started, openStore(str(p, 'root'), 'build'));
  const reporter = await orCancel(started, createReporter(bool(p, 'quiet') ? 'quiet' : progress));
  // A foreign platform: its RUN steps need QEMU user emulation through binfmt_misc. Without it a
  // build that has no RUN step still works, so this is a warning, said before anything runs.
  for (const platform of platforms) {
    const foreign = isNative(platform, host) ? undefined : emulationProblem(platform);
    if (foreign) reporter.warn(`--platform ${formatPlatform(platform)}: RUN steps cannot run here: ${foreign}`);
  }
  const remoteOpts = async () => (await pushModule()).remoteOptions(store, insecure, signal);
  let agents: SshAgents | undefined;
  let early: EarlyPush | undefined;
  try {
    // --push: each layer of the image starts up to the first tag's repository as soon as the build has
    // written it (exporter/push.ts earlyPush); the push after the build waits for them, then sends
    // the manifest. A failed build sends no manifest.
    if (pushes.length)
      early = await (
        await pushModule()
      ).earlyPush(store, pushes[0].name, { ...pushes[0].compression, insecure: pushInsecure, signal });
    // The early uploads are compressed as the first push asks: another push joins them only if it asks the same.
    const alike = (a: PushCompression, b: PushCompression) =>
      a.compression === b.compression && a.level === b.level && a.force === b.force;
    const pushOpts = (push: (typeof pushes)[number]) => ({
      ...push.compression,
      insecure: pushInsecure,
      reporter,
      early: alike(push.compression, pushes[0].compression) ? early : undefined,
      signal,
    });
    agents = sshSources.length ? await startAgents(sshSources) : undefined;
    // --cache-from: records only, for this build; their layers are fetched on a hit.
    const useCache = cacheFrom.length > 0 && !bool(p, 'no-cache');
    const imported = useCache
      ? await cacheShare!.importCache(store, cacheFrom, { opts: remoteOpts, reporter })
      : undefined;
    // type=inline is written into the image by the build itself; the others are exported after it.
    const exported = cacheTo.filter((c) => c.type !== 'inline');
    const request = (platform: Platform, tags: string[]): BuildRequest => ({
      store,
      contextDir,
      contextIsTemporary: stdin !== undefined,
      dockerfilePath,
      dockerfileIsFile: fileFlag !== '-',
      dockerfileText,
      tags,
      buildArgs: args,
      target: str(p, 'target') || undefined,
      noCache: bool(p, 'no-cache'),
      noCacheFilter: list(p, 'no-cache-filter'),
      network: network as 'default' | 'none' | 'host',
      allowNetworkHost: allow.has('network.host'),
      secrets,
      ssh: agents?.sockets,
      sourceDateEpoch,
      compression,
      reporter,
      signal,
      // FROM an image not in the store: pull it (by digest for name@sha256:...) and tag it.
      fetchBase: async (ref, wanted) => {
        try {
          return (
            await (
              await registryModule()
            ).pullImage(store, ref, {
              insecure,
              reporter,
              label: `pull base image ${ref}`,
              platform: formatPlatform(wanted),
              keepTag: !pull,
              signal,
            })
          ).image;
        } catch (e) {
          // A tag the store has (for other platforms only): the caller says so; here, what the pull said.
          const tagged = !pull && (await store.tags.get(ref).catch(() => undefined));
          if (tagged) throw new BuildError(`could not pull it for ${formatPlatform(wanted)}: ${(e as Error).message}`);
          const where = pull
            ? 'could not be pulled (--pull)'
            : `is not in the store (${store.root}) and could not be pulled`;
          throw new BuildError(`base image "${ref}" ${where}: ${(e as Error).message}`);
        }
      },
      cacheFrom: imported,
      pull,
      labels,
      annotations: (image) => annotationsFor(image).manifest,
      run,
      namedContexts,
      inlineCache: cacheTo.some((c) => c.type === 'inline'),
      // Given, --platform is also what the config says; not given, the final stage's platform is (BuildKit).
      platform: str(p, 'platform') === undefined ? undefined : platform,
      onLayer: early?.add,
      // The first build of the context takes the listing begun above (another --platform's lists it anew).
      context: started,
      // A failed build's finished steps are shared too (BuildKit drops them): the next run resumes there.
      onFailure: exported.length
        ? async (records) => {
            reporter.info(`build failed: exporting the cache of the ${records.length} steps that finished`);
            await cacheShare!
              .exportCache(store, exported, records, { opts: remoteOpts, reporter, imported, compression })
              .catch((e) => {
                reporter.warn(`--cache-to: ${(e as Error).message}`);
              });
          }
        : undefined,
    });
    if (platforms.length > 1) {
      const images: { image: Image; platform: Platform }[] = [];
      // One platform after the other; a step they share runs once, even under --no-cache (BuildKit).
      const ranKeys = new Set<string>();
      for (const pl of platforms)
        images.push({ image: (await build({ ...request(pl, []), ranKeys })).image, platform: pl });
      const index = await writeIndex(store, images, annotationsFor);
      for (const tag of storeTags) await store.images.tagDescriptor(tag, index);
      if (metadataFile) await writeMetadata(metadataFile, { descriptor: index, tags: storeTags, buildRef });
      for (const push of pushes) {
        const pushed = await (await pushModule()).pushImage(store, push.name, pushOpts(push));
        if (metadataFile)
          await writeMetadata(metadataFile, { descriptor: pushed.descriptor, tags: storeTags, buildRef });
      }
      reporter.close();
      if (bool(p, 'quiet')) process.stdout.write(`${index.digest}\n`);
      else
        reporter.info(
          `writing image index ${index.digest}${storeTags.length ? `, naming to ${storeTags.join(', ')}` : ''}`,
        );
      return 0;
    }
    const result = await build(request(platforms[0], storeTags));
    // buildx writes the metadata once the image exists and again, as pushed, after --push.
    const image = result.image;
    const configDigest = image.configDigest;
    if (metadataFile)
      await writeMetadata(metadataFile, {
        descriptor: await store.images.descriptor(image),
        configDigest,
        tags: storeTags,
        buildRef,
      });
    for (const push of pushes) {
      const pushed = await (
        await pushModule()
      ).pushImage(store, push.name, { ...pushOpts(push), manifestDigest: result.image.manifestDigest });
      if (metadataFile)
        await writeMetadata(metadataFile, { descriptor: pushed.descriptor, configDigest, tags: storeTags, buildRef });
    }
    if (exported.length)
      await cacheShare!.exportCache(store, exported, result.cacheRecords, {
        opts: remoteOpts,
        reporter,
        imported,
        compression,
      });
    for (const o of outputs) await exportImage!(store, result.image, tags, o, { compression, reporter, signal });
    await load?.loadIntoDocker(store, result.image, tags, { reporter, signal });
    reporter.close();
    const id = result.image.configDigest;
    if (iid)
      try {
        writeFileSync(iid, id);
      } catch (e) {
        throw new BuildError(`--iidfile ${iid}: cannot write the image ID: ${(e as Error).message}`);
      }
    if (explain)
      await (
        await explainModule()
      ).writeExplain(result.explain, {
        format: explain,
        file: explainFile,
        dryRun: false,
        image: { id, manifestDigest: result.image.manifestDigest, tags: storeTags },
        color: !explainFile && process.stderr.isTTY === true && !process.env.CI,
        contextDir,
        store,
      });
    if (bool(p, 'quiet') && !stdoutTaken) process.stdout.write(`${id}\n`);
    else reporter.info(`writing image ${id}${storeTags.length ? `, naming to ${storeTags.join(', ')}` : ''}`);
    return 0;
  } finally {
    // After a failure: no manifest names what went up; the uploads still running end first (an
    // interrupt does not wait for them: the next Store.open removes a half-compressed blob).
    if (!signal.aborted) await early?.close();
    await agents?.close();
    reporter.close();
    await started.cancel();
  }
}

/**
 * What -t, --push and -o type=image|registry|cacheonly ask, with buildx's rules: -t replaces every image
 * output's name=; --push makes every image output push, or adds one that pushes -t's names; an output that
 * pushes must have a name ("tag is needed when pushing to registry"). storeTags: the names the built image
 * gets in the store: -t's and the image outputs', none when the only outputs are type=cacheonly (buildx then
 * exports nothing). pushes: each name once, with its output's compression (compression=, compression-level=,
 * force-compression=, each the flags' when not given: `defaults`); pushInsecure: --insecure-registry
 * and the registries of the names whose output says registry.insecure.
 */
function imageOutputs(
  parsed: Output[],
  flags: string[],
  tags: string[],
  push: boolean,
  insecure: string[],
  defaults: { compression: Compression; level?: string; force: boolean },
): { storeTags: string[]; pushes: { name: string; compression: PushCompression }[]; pushInsecure: string[] } {
  const images = parsed.flatMap((o, i) =>
    o.image ? [{ ...o.image, names: tags.length ? tags : o.image.names, flag: `--output ${flags[i]}` }] : [],
  );
  if (push && !images.length) {
    if (tags.length === 0) throw new UsageError('--push needs at least one -t NAME[:TAG] to push to');
    images.push({ names: tags, push: true, insecure: false, flag: '--push' });
  }
  for (const im of images) {
    im.push ||= push;
    if (im.push && !im.names.length) throw new UsageError(`${im.flag}: tag is needed when pushing to registry`);
  }
  const cacheOnly = parsed.length > 0 && parsed.every((o) => o.type === 'cacheonly');
  const storeTags = [...new Set([...(cacheOnly ? [] : tags), ...images.flatMap((im) => im.names)])];
  const pushes = new Map<string, { name: string; compression: PushCompression }>();
  for (const im of images) {
    const compression = im.compression ?? defaults.compression;
    // The level is checked against the compression it is for: the output's, or --compression's; for an
    // output that does not push too (a bad value is one before the build, whatever the output does with it).
    const [raw, from] = im.level !== undefined ? [im.level, `${im.flag}: compression-level`] : [defaults.level, ''];
    const level =
      raw === undefined ? undefined : parseCompressionLevel(raw, compression, from || '--compression-level');
    const c: PushCompression = { compression, level, force: im.force ?? defaults.force };
    if (im.push) for (const name of im.names) if (!pushes.has(name)) pushes.set(name, { name, compression: c });
  }
  const pushInsecure = [
    ...insecure,
    ...images.filter((im) => im.insecure).flatMap((im) => im.names.map((n) => parseReference(n).registry)),
  ];
  return { storeTags, pushes: [...pushes.values()], pushInsecure };
}

/** `work`, and if it fails, the context's walk ended: no build will read it. */
async function orCancel<T>(started: ContextStart, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (e) {
    await started.cancel();
    throw e;
  }
}

/**
 * `--metadata-file`: buildx's keys. The descriptor is the manifest's (or with several platforms the
 * index's) as the registry has it after a push (its digest is what the registry serves), else as the
 * store has it. `containerimage.config.digest` only for one image, as BuildKit. `buildx.build.ref` is
 * buildx's BUILDER/NODE/REF: tsbuild has no builder instances, so `tsbuild/local/ID`, ID new per build.
 * No provenance keys: tsbuild makes no provenance attestation.
 */
async function writeMetadata(
  file: string,
  o: { descriptor: Descriptor; configDigest?: string; tags: string[]; buildRef: string },
): Promise<void> {
  const { mediaType, digest, size } = o.descriptor;
  const metadata: Record<string, unknown> = {
    'buildx.build.ref': o.buildRef,
    ...(o.configDigest ? { 'containerimage.config.digest': o.configDigest } : {}),
    'containerimage.descriptor': { mediaType, digest, size },
    'containerimage.digest': digest,
  };
  // Fully qualified, as buildx writes them (docker.io/library/app:latest).
  if (o.tags.length) metadata['image.name'] = o.tags.map((t) => formatReference(parseReference(t))).join(',');
  try {
    await writeFileAtomic(resolve(file), JSON.stringify(metadata, null, 2) + '\n', { durable: true });
  } catch (e) {
    throw new UsageError(`--metadata-file ${file}: ${(e as Error).message}`);
  }
}

/** A build's id for `buildx.build.ref`: 25 lowercase letters and digits, as buildx's refs are. */
function newBuildId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(25)].map((b) => alphabet[b % alphabet.length]).join('');
}

function statOrUndefined(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/**
 * An OCI image index over one image per platform, written into the store; its descriptor. `--annotation`s
 * of type index go on it, manifest-descriptor ones on each platform's entry (as BuildKit writes them).
 */
async function writeIndex(
  store: Awaited<ReturnType<typeof openStore>>,
  images: { image: Image; platform: Platform }[],
  annotationsFor: (pl: Platform) => Annotations,
): Promise<Descriptor> {
  const manifests: Descriptor[] = [];
  const some = (a: Record<string, string>) => (Object.keys(a).length ? { annotations: a } : {});
  for (const { image, platform } of images)
    manifests.push({
      ...(await store.images.descriptor(image)),
      platform: { ...platform },
      ...some(annotationsFor(platform).manifestDescriptor),
    });
  const index = annotationsFor(images[0].platform).index;
  const bytes = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests, ...some(index) });
  const { digest, size } = await store.blobs.put(bytes);
  return { mediaType: MediaType.OciIndex, digest, size };
}

/**
 * `build --dry-run`: the build's every key and cache lookup, nothing run or written (solver/build.ts
 * dryRun). The store is opened without a lease (nothing is used); --cache-from's records go to a
 * scratch store that is removed after. The report is the result: text or JSON on stdout (or
 * --explain-file). Flags that write (-t, --push, -o, --cache-to, --iidfile) have no effect.
 */
async function dryRunCommand(o: {
  context: ContextStart;
  p: ReturnType<typeof parseArgs>;
  contextDir: string;
  dockerfilePath: string;
  dockerfileIsFile: boolean;
  dockerfileText: string;
  args: Record<string, string>;
  network: 'default' | 'none' | 'host';
  allowNetworkHost: boolean;
  secrets: Map<string, { file?: string; env?: string }>;
  sourceDateEpoch: number | undefined;
  cacheFrom: CacheRef[];
  cacheShare: Awaited<ReturnType<typeof cacheShareModule>> | undefined;
  insecure: string[];
  explain: string;
  explainFile: string | undefined;
  signal: AbortSignal;
  run: BuildRequest['run'];
  namedContexts: BuildRequest['namedContexts'];
  platform: Platform;
}): Promise<number> {
  const { p } = o;
  const store = await orCancel(o.context, openStore(str(p, 'root')));
  const reporter = await orCancel(o.context, createReporter('quiet'));
  let scratch: string | undefined;
  try {
    let imported;
    if (o.cacheFrom.length) {
      scratch = mkdtempSync(join(tmpdir(), 'tsbuild-dry-run-'));
      const blobs = (await Store.open(scratch)).blobs;
      imported = await o.cacheShare!.importCache(store, o.cacheFrom, {
        opts: async () => ({ insecure: o.insecure }),
        reporter,
        blobs,
      });
    }
    const result = await dryRun({
      store,
      contextDir: o.contextDir,
      dockerfilePath: o.dockerfilePath,
      dockerfileIsFile: o.dockerfileIsFile,
      dockerfileText: o.dockerfileText,
      buildArgs: o.args,
      target: str(p, 'target') || undefined,
      noCache: bool(p, 'no-cache'),
      network: o.network,
      allowNetworkHost: o.allowNetworkHost,
      secrets: o.secrets,
      sourceDateEpoch: o.sourceDateEpoch,
      reporter,
      signal: o.signal,
      cacheFrom: imported,
      run: o.run,
      namedContexts: o.namedContexts,
      platform: o.platform,
      noCacheFilter: list(p, 'no-cache-filter'),
      context: o.context,
    });
    await (
      await explainModule()
    ).writeExplain(result.explain, {
      format: o.explain === 'json' ? 'json' : 'text',
      file: o.explainFile,
      dryRun: true,
      image: null,
      color: false,
      contextDir: o.contextDir,
      store,
    });
    return 0;
  } finally {
    reporter.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    await o.context.cancel();
  }
}
