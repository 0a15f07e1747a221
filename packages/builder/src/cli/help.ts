// `tsbuild COMMAND --help`: what each command takes, as one screen of text.
const help: Record<string, string> = {
  build: `Usage: tsbuild build [OPTIONS] PATH      (also: tsbuild [OPTIONS] PATH)

Build an image from a Dockerfile and the build context at PATH.

  -t, --tag NAME[:TAG]            name the image (repeatable; NAME may carry a registry host)
  -f, --file PATH                 Dockerfile (default PATH/Dockerfile; - reads stdin)
      --build-arg K=V | K         set a build arg (K alone: from the environment)
      --target STAGE              build up to that stage
      --no-cache                  ignore the build cache
      --network default|none|host network for RUN steps (default: private, with outbound access)
      --allow network.host        let RUN steps use the host's network (--network host, RUN --network=host)
      --secret id=ID,src=FILE     a secret for RUN --mount=type=secret (or id=ID,env=VAR)
      --progress auto|tty|plain|quiet
  -o, --output type=oci|oci-archive|docker|local,dest=PATH
      --compression gzip|zstd|none how new layers are stored (default gzip)
      --iidfile FILE              write the image ID
      --explain                   after the build: hit or miss per step, and why
      --push                      push every -t tag
      --cache-to type=registry,ref=R[,mode=min|max]
      --cache-from type=registry,ref=R
      --insecure-registry HOST    plain HTTP for that registry
  -q, --quiet                     print only the image ID
      --root DIR                  the store (default $TSBUILD_ROOT, /var/lib/tsbuild)
`,
  run: `Usage: tsbuild run [OPTIONS] IMAGE [COMMAND] [ARG...]

  --rm, -d, --name N, -i, -t, -e K=V, --env-file F, -w DIR, -u USER[:GROUP],
  -v HOST:CTR[:ro] | -v NAME:CTR | -v CTR, --network default|none|host|container:NAME,
  -p [IP:]HOST:CTR[/tcp|/udp] (publish a port; default network only),
  --hostname H, --cpu-period N, --cpu-quota N, --cpus X, -m/--memory SIZE, --pids-limit N,
  --entrypoint CMD                (see docs/containers.md)
`,
  images: 'Usage: tsbuild images [-q] [--no-trunc] [--format json]\n',
  inspect: 'Usage: tsbuild inspect [--type image|container] REF...\n',
  tag: 'Usage: tsbuild tag SOURCE TARGET\n',
  rmi: 'Usage: tsbuild rmi REF...\n',
  prune: `Usage: tsbuild prune [--all] [--grace DURATION]

Remove blobs, snapshots and cache records that no tag, cache record or lease reaches. What a
running build, run, push, pull, commit or export uses, and what a container needs, is leased and
never removed, whatever its age.

  --all    also drop the build cache (records not in use by a running build)
  --grace  also keep unreferenced data younger than this (default 15m; 0 to keep none)
`,
  check: `Usage: tsbuild check [--repair]

Verify the store, like git fsck: every blob against its digest, every tag's image (manifests,
configs, layers present, sizes as described), every cache record and snapshot entry. Expired
leases (of processes that are gone) are removed. Prints what is wrong; exits 1 if anything is.

  --repair  drop what cannot be fixed: corrupt blobs, tags whose image is incomplete, unreadable
            cache records, stray snapshot entries (exits 0 when everything found was dropped)
`,
  cache: `Usage: tsbuild cache ls [--format table|json] [--no-trunc]
       tsbuild cache du [--format table|json]
       tsbuild cache prune [--filter until=DURATION] [--keep-storage SIZE] [--all]

The build cache: one record per filesystem step (its layer under the step's cache key).

  ls       every record: id, layer size, last use (a build's hit counts), in a tagged image, the step that made it
  du       the records' layer bytes, and how much of it no tagged image uses (reclaimable)
  prune    delete records (by default those whose layer no tagged image has), then what nothing reaches
    --all                   every record
    --filter until=DURATION only records not used for DURATION (30m, 24h)
    --keep-storage SIZE     least recently used first, only until the cache fits in SIZE (512m, 2g)
`,
  save: 'Usage: tsbuild save REF... -o FILE [--format docker|oci]\n',
  load: 'Usage: tsbuild load -i FILE\n',
  parse: 'Usage: tsbuild parse [-f FILE] [--format json|buildkit] [--build-arg K=V] [--target STAGE] [PATH]\n',
  pull: 'Usage: tsbuild pull [--platform OS/ARCH] [--insecure-registry HOST] NAME[:TAG|@DIGEST]\n',
  push: 'Usage: tsbuild push [--insecure-registry HOST] NAME[:TAG]\n',
  login: 'Usage: tsbuild login [-u USER] [-p PASS | --password-stdin] REGISTRY\n',
  logout: 'Usage: tsbuild logout REGISTRY\n',
};

export function commandHelp(command: string): string | undefined {
  return help[command] ?? (command ? `Usage: tsbuild ${command} ... (see docs/containers.md)\n` : undefined);
}
