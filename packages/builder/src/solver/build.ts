// One build: Dockerfile → graph → solved stages → image in the store, tagged.
import { resolve } from 'node:path';
import { createHash } from 'node:crypto';
import {
  baseImageUses,
  buildGraph,
  parse,
  lint,
  DockerfileError,
  formatError,
  formatLintWarning,
  type FromSource,
  type GraphOptions,
  type LintWarning,
  type Stage,
} from '@tsbuild/parser';
import {
  formatPlatform,
  hostPlatform,
  platformMatches,
  remote,
  validate,
  type Platform,
  type Digest,
  type Image,
  type Layer,
  type Store,
} from '@tsbuild/layerstore';
import { BuildContext, statCacheDir, type ContextStart } from '../context/context.js';
import type { Reporter } from '../progress/index.js';
import { BuildError, where } from '../errors.js';
import { Solver } from './solver.js';
import type { RunSettings } from './ops/context.js';
import { contextFor, directoryBuild, importLayout, type NamedContext } from './named-contexts.js';
import type { ImportedCache } from '../exporter/cache-share.js';
import type { ExplainRow } from './state.js';
import { testStop, trace } from '../trace.js';
import { baseKey, foreignPlatform, toPlatform } from './base-state.js';
import { emulationProblem, isNative } from './emulation.js';
import { startNetwork, type PrivateNetwork } from '@tsbuild/sandbox';

export interface BuildRequest {
  store: Store;
  contextDir: string;
  /** The context is a directory made for this build only (`build -`): no stat cache is kept for it. */
  contextIsTemporary?: boolean;
  /** Path shown in errors; the file itself if it is one (for <Dockerfile>.dockerignore). */
  dockerfilePath: string;
  dockerfileIsFile: boolean;
  dockerfileText: string;
  tags: string[];
  buildArgs: Record<string, string>;
  target?: string;
  noCache: boolean;
  /** `--no-cache-filter STAGE`: these stages' steps ignore the cache; other stages' steps may hit. */
  noCacheFilter?: string[];
  network: 'default' | 'none' | 'host';
  /** `--allow network.host`: RUN steps may use the host's network namespace. */
  allowNetworkHost?: boolean;
  secrets: Map<string, { file?: string; env?: string }>;
  /** `--ssh`: the host agent socket of each id. */
  ssh?: Map<string, string>;
  sourceDateEpoch?: number;
  compression?: 'gzip' | 'zstd' | 'none';
  reporter: Reporter;
  signal: AbortSignal;
  /** Finds a base image for a platform that is not in the store (a registry pull); undefined when none is found. */
  fetchBase?: (ref: string, platform: Platform) => Promise<Image | undefined>;
  /** The registry cache's records for this build (--cache-from); see SolveOptions.cacheFrom. */
  cacheFrom?: ImportedCache;
  /** `--pull`: resolve every base tag with fetchBase, even one the store has. */
  pull?: boolean;
  /** `--label`: over the final stage's labels. */
  labels?: Record<string, string>;
  /**
   * `--annotation`: the manifest's annotations for the image's platform (its config's: the --platform
   * given, else the final stage's, as BuildKit hands the implicit target's to its exporter).
   */
  annotations?: (platform: Platform) => Record<string, string>;
  /** `--add-host`, `--ulimit`, `--shm-size`. */
  run?: RunSettings;
  /** `--build-context`: what FROM NAME and --from=NAME read instead of the image NAME. */
  namedContexts?: NamedContext[];
  /** `--cache-to type=inline`: the image's own cache records go into its config (InlineCacheKey). */
  inlineCache?: boolean;
  /**
   * `--platform`: what the image is for (default this machine's); a foreign one runs RUN steps emulated.
   * Each stage runs for its FROM --platform if it has one, else for this one. Given, it is also what the
   * image's config says (BuildKit's rule); not given, the config says the final stage's platform.
   */
  platform?: Platform;
  /**
   * Keys of the steps run by this invocation's earlier builds (`--platform a,b` builds one platform after
   * the other): a step with one of them is taken from the cache even under --no-cache/--no-cache-filter,
   * as BuildKit runs a step that several platforms share (a FROM --platform=$BUILDPLATFORM stage) once.
   * The build adds the keys of the steps it runs.
   */
  ranKeys?: Set<string>;
  /**
   * Hears each layer of the image being built as soon as its blob is in the store (base layers when
   * the build starts on them, new ones as they are written), while later steps still run: `build
   * --push` starts uploading it then. Layers of stages the image does not stand on are not said.
   */
  onLayer?: (layer: Layer) => void;
  /** A step failed: the records of the steps that finished (--cache-to exports them), before the error is thrown. */
  onFailure?: (records: BuildResult['cacheRecords']) => Promise<void>;
  /**
   * The context's .dockerignore read and listing begun by the caller ahead of the build (BuildContext.start,
   * as soon as the CLI knows the context): taken when it is for this build's context, Dockerfile and store.
   * The caller still cancels it when done (a no-op once the listing is in).
   */
  context?: ContextStart;
}

export interface BuildResult {
  image: Image;
  explain: ExplainRow[];
  /**
   * Cache records of the filesystem steps (for --cache-to); inImage: the step's stage is the target or one it is FROM.
   */
  cacheRecords: { key: Digest; layer: Layer | null; created: string; inImage: boolean }[];
}

export async function build(req: BuildRequest): Promise<BuildResult> {
  return (await solveRequest(req, false)) as BuildResult;
}

/**
 * --dry-run: every step's key computed and looked up as build() would (the context through the stat
 * cache, base images from the store, --cache-from records), and nothing run or written: no layer,
 * snapshot, cache record, tag, --explain pointer, nor the context's stat cache. A base image that is
 * not in the store is an error (a dry run does not pull).
 */
export async function dryRun(req: Omit<BuildRequest, 'tags' | 'fetchBase'>): Promise<{ explain: ExplainRow[] }> {
  return solveRequest({ ...req, tags: [] }, true);
}

/** The platforms of the index a tag names in the store ("linux/amd64, linux/arm64/v8"), else undefined. */
async function indexPlatforms(store: Store, ref: string): Promise<string | undefined> {
  const desc = await store.tags.get(ref).catch(() => undefined);
  if (!desc) return undefined;
  const doc = JSON.parse((await store.blobs.read(desc.digest)).toString('utf8')) as {
    manifests?: { platform?: Platform }[];
  };
  if (!Array.isArray(doc.manifests)) return undefined;
  return doc.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown')).join(', ');
}

/** Whether an image's config says it is for `platform` (one that says nothing is taken as it is). */
function forPlatform(image: Image, platform: Platform): boolean {
  const got = { os: image.config.os, architecture: image.config.architecture, variant: image.config.variant };
  return typeof got.os !== 'string' || typeof got.architecture !== 'string' || platformMatches(platform, got);
}

async function solveRequest(req: BuildRequest, dry: boolean): Promise<BuildResult | { explain: ExplainRow[] }> {
  // The context is listed while the Dockerfile is parsed and base images are resolved, if the caller
  // has not started it earlier still.
  const dockerfile = req.dockerfileIsFile ? req.dockerfilePath : undefined;
  const statCache = req.contextIsTemporary ? undefined : statCacheDir(req.store.root);
  const started =
    req.context?.claim(req.contextDir, dockerfile, statCache) ??
    BuildContext.start(req.contextDir, dockerfile, statCache);
  try {
    return await solveStarted(req, dry, started);
  } finally {
    // Failed, perhaps before it read the context (a Dockerfile error, a missing base image): no walk outlives
    // it. And whatever the end, the stat cache's file is let go (a dry run or a failed build has not saved).
    await started.cancel();
  }
}

async function solveStarted(
  req: BuildRequest,
  dry: boolean,
  started: ContextStart,
): Promise<BuildResult | { explain: ExplainRow[] }> {
  const platform: Platform = req.platform ?? hostPlatform();
  const platformString = formatPlatform(platform);
  const contextPromise = started.open();
  contextPromise.catch(() => {});
  trace('build start');
  let df;
  try {
    df = parse(req.dockerfileText, { file: req.dockerfilePath });
  } catch (e) {
    if (e instanceof DockerfileError) throw new BuildError(formatError(e), 2);
    throw e;
  }
  const gopts: GraphOptions = {
    file: req.dockerfilePath,
    buildArgs: req.buildArgs,
    target: req.target,
    buildPlatform: formatPlatform(hostPlatform()),
    targetPlatform: platformString,
  };

  const bases = new Map<string, Image>();
  let uses: ReturnType<typeof baseImageUses>;
  try {
    uses = baseImageUses(df, gopts);
  } catch (e) {
    if (e instanceof DockerfileError) throw new BuildError(formatError(e), 2);
    throw e;
  }
  const movedBases = new Map<string, string>();
  for (const use of uses) {
    const ref = use.ref;
    // The instruction naming the image: said in front of every failure to resolve it (file:line:col).
    const at = where(use);
    const located = (e: Error): BuildError => new BuildError(`${at}: ${e.message}`, (e as BuildError).errdef);
    // A FROM --platform naming another platform than the target's: that platform's image, kept apart.
    const foreign = foreignPlatform(use.platform, platform);
    const key = baseKey(ref, foreign);
    if (bases.has(key)) continue;
    const want = foreign === undefined ? platform : toPlatform(foreign);
    const wantString = formatPlatform(want);
    const flag = foreign === undefined ? '--platform' : 'FROM --platform';
    const named = contextFor(req.namedContexts ?? [], ref);
    // A directory context is built, a layout imported: both write to the store, which a dry run never does.
    if (dry && named && named.type !== 'image')
      throw new BuildError(
        `--dry-run: --build-context ${ref} (${named.type}) would be built into the store; not supported`,
        2,
      );
    if (named?.type === 'dir') {
      const { store, noCache, sourceDateEpoch, compression, reporter, signal } = req;
      const inner = {
        store,
        noCache,
        sourceDateEpoch,
        compression,
        reporter,
        signal,
        platform: foreign === undefined ? req.platform : want,
        ...directoryBuild(named.dir),
      };
      bases.set(key, (await build(inner)).image);
      continue;
    }
    if (named?.type === 'oci-layout') {
      // An index in the layout gives the stage's platform's image; one image for another platform is
      // refused, as for a base from the store: its files are not the platform's the config would say.
      const image = await importLayout(req.store, named, want);
      if (!forPlatform(image, want))
        throw new BuildError(
          `--build-context ${named.name}=oci-layout://${named.dir}: the image is for ` +
            `${formatPlatform(image.config as Platform)}, not ${wantString} (${flag})`,
        );
      bases.set(key, image);
      continue;
    }
    // docker-image://REF: that image, resolved as a base image is.
    const imageRef = named?.type === 'image' ? named.ref : ref;
    // A tag naming an index gives this platform's image, or nothing when only other platforms were pulled.
    let image = await req.store.images.get(imageRef, want).catch(() => undefined);
    // --pull: a tag is asked of its registry again (a digest cannot move); a tag that moved is said by --explain.
    if (req.pull && req.fetchBase && !dry && !/@sha256:[0-9a-f]{64}$/.test(imageRef)) {
      const before = image?.manifestDigest;
      image = await req.fetchBase(imageRef, want).catch((e: Error) => {
        throw located(e);
      });
      if (before && image && image.manifestDigest !== before) movedBases.set(key, before);
    }
    if (!image && req.fetchBase && !dry) {
      // A tag naming an index without this platform: said as such, not as a base missing from the store.
      const others = await indexPlatforms(req.store, imageRef);
      image = await req.fetchBase(imageRef, want).catch((e: Error) => {
        if (!others) throw located(e);
        throw new BuildError(
          `${at}: base image "${imageRef}" is in the store for ${others}, not ${wantString} (${flag}): ${e.message}`,
        );
      });
    }
    if (!image && dry)
      throw new BuildError(
        `${at}: base image "${imageRef}" is not in the store (${req.store.root}); ` +
          `a dry run does not pull: run 'tsbuild pull ${imageRef}' first`,
      );
    if (!image)
      throw new BuildError(
        `${at}: base image "${imageRef}" is not in the store (${req.store.root}) and could not be pulled; ` +
          "build it, or bring it with 'tsbuild load' or 'tsbuild pull'",
      );
    // A base for another platform would make an image whose config says one platform and whose
    // files are for another: refuse it, as BuildKit refuses a base with no manifest for the platform.
    // The store's copy for another platform (a tag names one image) is pulled for this one, as docker does;
    // the tag then names the registry's index, which keeps both (fetchBase leaves a tag naming anything
    // else, a local build, where it is).
    let notPulled = '';
    if (!forPlatform(image, want) && req.fetchBase && !dry && !req.pull) {
      const fetched = await req.fetchBase(imageRef, want).catch((e: Error) => void (notPulled = `: ${e.message}`));
      if (fetched) image = fetched;
    }
    if (!forPlatform(image, want))
      throw new BuildError(
        `${at}: base image "${imageRef}" is for ${formatPlatform(image.config as Platform)}, not ${wantString} ` +
          `(${flag})${notPulled}`,
      );
    bases.set(key, image);
  }

  trace('base images resolved');
  let graph;
  try {
    graph = buildGraph(df, {
      ...gopts,
      baseConfig: (ref, p) => bases.get(baseKey(ref, foreignPlatform(p, platform)))?.config.config ?? undefined,
    });
  } catch (e) {
    if (e instanceof DockerfileError) throw new BuildError(formatError(e), 2);
    throw e;
  }
  // The build checks, as BuildKit runs them with every build: warnings, or with `# check=error=true` a
  // failure before any step runs.
  const reachable = new Set(graph.stages.map((st) => st.index));
  const baseEnv = (ref: string) =>
    (bases.get(ref) ?? [...bases].find(([k]) => k.endsWith(` ${ref}`))?.[1])?.config.config?.Env;
  const findings = runChecks(df, req.buildArgs, baseEnv, reachable);
  for (const w of findings.warnings) req.reporter.warn(formatLintWarning(w));
  for (const w of graph.warnings) {
    // The graph's duplicate-stage-name warning is also DuplicateStageName's finding: said once.
    if (findings.warnings.some((f) => f.message === w.message && f.location.line === w.location?.line)) continue;
    req.reporter.warn(w.location ? `${w.location.file}:${w.location.line}: ${w.message}` : w.message);
  }
  if (findings.error && findings.warnings.length)
    throw new BuildError(
      `lint violation found for rules: ${[...new Set(findings.warnings.map((w) => w.rule))].sort().join(', ')}`,
    );
  const noCacheStages = noCacheFilterStages(df, graph, req.noCacheFilter ?? [], req.reporter);
  // A stage of another platform than the target's (the CLI warns about the target's) whose RUN steps
  // this machine can neither run nor emulate: said before anything runs, as for --platform.
  const warned = new Set<string>();
  for (const s of graph.stages) {
    const own = stagePlatform(graph.stages, s, platform);
    if (!s.steps.some((st) => st.kind === 'run') || isNative(own, hostPlatform()) || isNative(own, platform)) continue;
    const problem = warned.has(formatPlatform(own)) ? undefined : emulationProblem(own);
    warned.add(formatPlatform(own));
    if (problem) req.reporter.warn(`FROM --platform=${formatPlatform(own)}: RUN steps cannot run here: ${problem}`);
  }

  trace('graph built');
  const context = await contextPromise;
  trace('context opened');
  // The default network of RUN steps: one private network namespace (and one slirp4netns) for the
  // whole build, made when the first step needs it (its start is hidden behind that step's own
  // preparation: snapshots, user lookup), ended with the build.
  let network: Promise<PrivateNetwork> | undefined;
  const privateNetwork = () =>
    (network ??= startNetwork({ signal: req.signal }).then((n) => {
      if (n.dnsWarning) req.reporter.warn(n.dnsWarning);
      return n;
    }));
  // Once no step runs any more: the network closed, the context's stat cache saved (never fails the build).
  let ending: Promise<void> | undefined;
  const endBuild = async (): Promise<void> => {
    await Promise.all([
      // Told to end, not waited for: the helper's exit (its tap device's teardown) takes 10-20 ms that
      // the build's result need not wait for; the holder kills it and ends by itself.
      network?.then(
        (n) => n.close({ wait: false }),
        () => {},
      ),
      dry ? undefined : context.save().catch(() => {}),
    ]);
  };
  // The stages whose layers make up the image: the target and the chain of stages it is FROM.
  const inImage = new Set<number>();
  for (let s = graph.stages.find((x) => x.index === graph.target); s && !inImage.has(s.index);) {
    inImage.add(s.index);
    const from = s.from;
    s = from.type === 'stage' ? graph.stages.find((x) => x.index === from.stage) : undefined;
  }
  const onLayer = req.onLayer;
  const solver = new Solver({
    store: req.store,
    graph,
    context,
    bases,
    reporter: req.reporter,
    noCache: req.noCache,
    noCacheStages,
    ranKeys: req.ranKeys,
    network: req.network,
    allowNetworkHost: req.allowNetworkHost ?? false,
    privateNetwork,
    secrets: req.secrets,
    ssh: req.ssh,
    sourceDateEpoch: req.sourceDateEpoch,
    compression: req.compression ?? 'gzip',
    platform,
    identity: createHash('sha256')
      .update(`${resolve(req.contextDir)}\0${resolve(req.dockerfilePath)}`)
      .digest('hex'),
    signal: req.signal,
    cacheFrom: req.cacheFrom,
    run: req.run,
    movedBases,
    dryRun: dry,
    onLayer: onLayer && !dry ? (stage, layer) => inImage.has(stage) && onLayer(layer) : undefined,
  });
  const cacheRecords = () =>
    solver.records.map((r) => ({
      key: r.key,
      layer: r.value.layer,
      created: r.value.created,
      inImage: inImage.has(r.stage),
    }));
  // The new layers' diffs renamed into snapshots/ while the image is written (it reads only blobs).
  let adopting: Promise<void> | undefined;
  try {
    let state;
    try {
      state = await solver.solve(true);
    } catch (e) {
      // A failed build keeps its work: the steps that finished are cached in the store (solve waits
      // for their layers), and --cache-to shares them too, so the next run resumes at the failure.
      if (!dry && !req.signal.aborted && req.onFailure) await req.onFailure(cacheRecords());
      throw e;
    }
    adopting = solver.layers.adopt();
    adopting.catch(() => {
      /* awaited below */
    });
    trace('stages solved');
    // No step runs any more: the network's teardown (its holder and helper exit) and the stat cache's
    // write proceed while the image is written, instead of after it.
    ending ??= endBuild();
    if (dry) return { explain: solver.explain };
    const config = solver.finalConfig(state);
    // BuildKit: a --platform given names the image's platform whatever the final stage stood on (its
    // variant kept when only the variant is unsaid); without it the config says the final stage's.
    if (req.platform) {
      const same = config.os === platform.os && config.architecture === platform.architecture;
      config.os = platform.os;
      config.architecture = platform.architecture;
      if (platform.variant || !same) {
        if (platform.variant) config.variant = platform.variant;
        else delete config.variant;
      }
    }
    if (req.labels && Object.keys(req.labels).length)
      config.config = { ...config.config, Labels: { ...config.config?.Labels, ...req.labels } };
    const records = cacheRecords();
    if (req.inlineCache) {
      // In key order, as every cache export: the image digest must not depend on which stage finished first.
      const own = records.filter((r) => r.inImage).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      (config as unknown as Record<string, unknown>)[remote.InlineCacheKey] = own.map(({ key, layer, created }) => ({
        key,
        layer,
        created,
      }));
    }
    const said = typeof config.os === 'string' && typeof config.architecture === 'string';
    const variant = said && config.variant ? { variant: config.variant } : {};
    const wanted = req.annotations?.(
      said ? { os: config.os, architecture: config.architecture, ...variant } : platform,
    );
    const annotations = wanted && Object.keys(wanted).length ? wanted : undefined;
    testStop('image-write');
    const image = await req.store.images.write({ config, layers: state.layers, annotations });
    // The output checked as a consumer would (by descriptors: the layers were verified as they were written).
    await validate(image, req.store.blobs, { layers: 'stat' });
    // Before the tags: a build whose adoption failed fails, and a failed build tags nothing.
    await adopting;
    testStop('tag');
    // Interrupted while the last layers or the image were written (no step left to see the signal): the
    // image stays in the store for the cache, but an interrupted build names nothing.
    req.signal.throwIfAborted();
    for (const tag of req.tags) await req.store.images.tag(tag, image);
    trace('image written and tagged');
    return { image, explain: solver.explain, cacheRecords: records };
  } finally {
    await adopting?.catch(() => {});
    await (ending ??= endBuild());
  }
}

/**
 * The platform a stage runs for, as BuildKit decides it: a stage FROM another stage runs for that
 * stage's; FROM an image, for its --platform if given; FROM scratch, for the target's (BuildKit ignores
 * --platform on scratch).
 */
function stagePlatform(stages: Stage[], stage: Stage, target: Platform): Platform {
  const from = stage.from;
  if (from.type === 'stage') {
    const parent = stages.find((s) => s.index === from.stage);
    return parent ? stagePlatform(stages, parent, target) : target;
  }
  const foreign = from.type === 'image' ? foreignPlatform(stage.platform, target) : undefined;
  return foreign === undefined ? target : toPlatform(foreign);
}

/**
 * `--no-cache-filter` names to the stages that ignore the cache: the named ones (lowercased, as BuildKit
 * names stages) and every stage that stands on one (FROM) or mounts one (RUN --mount from=): their steps'
 * keys name the stage by its key, not its content, so their records hold what they made from the old
 * result, and reusing them would put the old files in the image (and, rewritten under the same keys, in
 * later builds). A COPY --from is keyed by the content it copies: it misses by itself when that changed.
 * A name no stage has is warned about (buildx ignores it silently, hiding a typo).
 */
function noCacheFilterStages(
  df: ReturnType<typeof parse>,
  graph: { stages: Stage[] },
  names: string[],
  reporter: Reporter,
): Set<number> {
  const out = new Set<number>();
  const declared = new Set(
    df.instructions.filter((i) => i.keyword === 'FROM' && i.args.length === 3).map((i) => i.args[2].toLowerCase()),
  );
  for (const raw of names) {
    const name = raw.trim().toLowerCase();
    if (!declared.has(name)) {
      reporter.warn(`--no-cache-filter ${raw}: the Dockerfile has no stage named "${name}"`);
      continue;
    }
    for (const s of graph.stages) if (s.name === name) out.add(s.index);
  }
  for (let grew = out.size > 0; grew;) {
    grew = false;
    for (const s of graph.stages) {
      const mounts = s.steps.flatMap((st) => (st.kind === 'run' ? st.mounts : []));
      const reads = (f: FromSource | undefined) => f?.type === 'stage' && out.has(f.stage);
      if (
        !out.has(s.index) &&
        (reads(s.from.type === 'stage' ? s.from : undefined) || mounts.some((m) => 'from' in m && reads(m.from)))
      ) {
        out.add(s.index);
        grew = true;
      }
    }
  }
  return out;
}

/**
 * The build checks for a parsed Dockerfile (parser's lint): `# check=` or the BUILDKIT_DOCKERFILE_CHECK
 * build arg says which to skip and whether they fail the build. A bad check option is a Dockerfile error.
 * With `reachable` (a build), a finding inside a stage the target does not need is left out, as BuildKit
 * leaves it out of a build's warnings (--check reports every stage).
 */
export function runChecks(
  df: ReturnType<typeof parse>,
  buildArgs: Record<string, string>,
  baseEnv: (ref: string) => string[] | undefined,
  reachable?: Set<number>,
): { warnings: LintWarning[]; error: boolean } {
  let r;
  try {
    r = lint(df, { baseEnv, buildArgs, check: buildArgs['BUILDKIT_DOCKERFILE_CHECK'] });
  } catch (e) {
    if (e instanceof DockerfileError) throw new BuildError(formatError(e), 2);
    throw e;
  }
  const froms = df.instructions.filter((i) => i.keyword === 'FROM').map((i) => i.location.line);
  const stageOf = (line: number) => froms.findLastIndex((l) => l <= line);
  const shown = (w: LintWarning) =>
    !reachable || w.rule === 'ConsistentInstructionCasing' || stageOf(w.location.line) < 0
      ? true
      : reachable.has(stageOf(w.location.line));
  const warnings = r.warnings.filter(shown).sort((a, b) => a.location.line - b.location.line);
  return { warnings, error: r.config.error };
}
