// Every command's flags, with the help line for each: the parser (args.ts) reads the names and kinds,
// help.ts renders `tsbuild COMMAND --help` from the same entries, so a flag cannot be accepted without
// being listed. Data only: main loads this for --help without loading any command.
import type { FlagSpec } from './args.js';

export interface CommandSpec {
  /** One line for `tsbuild --help`. */
  summary: string;
  /** After `tsbuild NAME `: positionals and the like, e.g. `[OPTIONS] IMAGE [COMMAND] [ARG...]`. */
  usage: string;
  /** Paragraphs shown under the usage line. */
  about?: string;
  flags: FlagSpec[];
  /** Flags docker accepts for this command that tsbuild refuses by name (see FlagSpec.unsupported). */
  unsupported?: FlagSpec[];
  /** `volume ls`, `volume rm`, ...: each with its own flags. */
  subcommands?: Record<string, Omit<CommandSpec, 'summary'> & { summary?: string }>;
}

export const rootFlag: FlagSpec = {
  name: 'root',
  kind: 'string',
  value: 'DIR',
  help: 'the store (default $TSBUILD_ROOT, else /var/lib/tsbuild as root)',
};
export const insecureFlag: FlagSpec = {
  name: 'insecure-registry',
  kind: 'list',
  value: 'HOST[:PORT]|CIDR',
  help: 'HTTPS without verifying, else plain HTTP, for that registry (repeatable; loopback always is)',
};
const progressFlag: FlagSpec = {
  name: 'progress',
  kind: 'string',
  value: 'auto|tty|plain|quiet',
  help: 'how progress is shown (auto: tty on a terminal, plain otherwise)',
};
const quietFlag: FlagSpec = { name: 'quiet', short: 'q', kind: 'bool', help: 'no progress' };
const formatJson: FlagSpec = { name: 'format', kind: 'string', value: 'json', help: 'one JSON object per line' };
/** --compression: layers are stored uncompressed and compressed when the image leaves the store (deferred). */
function compressionFlag(where: string): FlagSpec {
  return {
    name: 'compression',
    kind: 'string',
    value: 'gzip|zstd|none',
    help: `how layers are compressed for ${where} (default gzip; the store keeps them uncompressed)`,
  };
}
/** --compression-level and --force-compression: BuildKit's compression-level= and force-compression= for a push. */
function pushCompressionFlags(where: string): FlagSpec[] {
  return [
    {
      name: 'compression-level',
      kind: 'string',
      value: 'N',
      help: `the level layers are compressed at for ${where} (gzip 0-9, default 1; zstd 0-22, default 3)`,
    },
    {
      name: 'force-compression',
      kind: 'bool',
      help: `for ${where}, recompress layers stored in another compression too (a pulled base's), not only new ones`,
    },
  ];
}
const noTrunc: FlagSpec = { name: 'no-trunc', kind: 'bool', help: 'full ids and commands' };

const buildFlags: FlagSpec[] = [
  {
    name: 'tag',
    short: 't',
    kind: 'list',
    value: 'NAME[:TAG]',
    help: 'name the image (repeatable; NAME may carry a registry host)',
  },
  {
    name: 'file',
    short: 'f',
    kind: 'string',
    value: 'PATH',
    help: 'Dockerfile (default PATH/Dockerfile; - reads stdin)',
  },
  { name: 'build-arg', kind: 'list', value: 'K=V|K', help: 'set a build arg (K alone: from the environment)' },
  { name: 'target', kind: 'string', value: 'STAGE', help: 'build up to that stage' },
  { name: 'no-cache', kind: 'bool', help: 'ignore the build cache' },
  {
    name: 'check',
    kind: 'bool',
    help: "run the build checks (BuildKit's rules) without building; exit 1 if any fires",
  },
  {
    name: 'no-cache-filter',
    kind: 'list',
    value: 'STAGE',
    help: 'rebuild that stage, and the stages built FROM it, without the cache (repeatable)',
  },
  {
    name: 'network',
    kind: 'string',
    value: 'default|none|host',
    help: 'network for RUN steps (default: private, with outbound access)',
  },
  {
    name: 'allow',
    kind: 'list',
    value: 'network.host',
    help: "let RUN steps use the host's network (--network host, RUN --network=host)",
  },
  { ...progressFlag },
  {
    name: 'output',
    short: 'o',
    kind: 'list',
    value: 'type=oci|docker|tar|local[,dest=PATH][,tar=false] | type=image|registry,name=N[,push=…] | DIR | -',
    help: 'also write the image (or its files) there, or name/push it (type=cacheonly: nothing)',
  },
  { name: 'iidfile', kind: 'string', value: 'FILE', help: 'write the image ID' },
  {
    name: 'metadata-file',
    kind: 'string',
    value: 'FILE',
    help: "write buildx's result JSON (containerimage.digest, ...) after the build and push",
  },
  { name: 'label', kind: 'list', value: 'K=V', help: 'set an image label (over the Dockerfile’s LABEL)' },
  {
    name: 'annotation',
    kind: 'list',
    value: '[TYPE:]K=V',
    help: "an OCI annotation (buildx's syntax): manifest; index, manifest-descriptor with several platforms",
  },
  { name: 'pull', kind: 'bool', help: 'ask the registry for every base image tag again, even one in the store' },
  { name: 'load', kind: 'bool', help: 'load the image into Docker (DOCKER_HOST, else /var/run/docker.sock)' },
  {
    name: 'build-context',
    kind: 'list',
    value: 'NAME=DIR|docker-image://REF|oci-layout://PATH[:TAG]',
    help: 'what FROM NAME and COPY --from=NAME use',
  },
  {
    name: 'add-host',
    kind: 'list',
    value: 'HOST:IP',
    help: 'an /etc/hosts entry for RUN steps (IP host-gateway: the host)',
  },
  {
    name: 'ulimit',
    kind: 'list',
    value: 'TYPE=SOFT[:HARD]',
    help: 'a resource limit for RUN steps (nofile=1024:2048)',
  },
  { name: 'shm-size', kind: 'string', value: 'SIZE', help: 'size of /dev/shm in RUN steps (default 64m)' },
  { name: 'rm', kind: 'bool', help: 'accepted for compatibility (steps never leave containers behind)' },
  { name: 'force-rm', kind: 'bool', help: 'accepted for compatibility (steps never leave containers behind)' },
  { name: 'compress', kind: 'bool', help: 'accepted for compatibility (the context is read in place, never sent)' },
  { name: 'push', kind: 'bool', help: 'push every -t tag (or -o type=image name)' },
  {
    name: 'explain',
    kind: 'optional',
    implied: 'text',
    value: '[=text|json]',
    help: 'the report: hit or miss per step, and why (json: docs/explain.md, on stdout)',
  },
  { name: 'explain-file', kind: 'string', value: 'FILE', help: 'write the report there (alone: --explain=json)' },
  {
    name: 'dry-run',
    kind: 'bool',
    help: 'compute and look up every cache key, run and write nothing, print the report',
  },
  {
    name: 'cache-to',
    kind: 'list',
    value: 'type=registry,ref=R|type=local,dest=DIR[,mode=min|max]|type=inline',
    help: 'export the build cache to a registry, a directory (an OCI layout) or into the image',
  },
  {
    name: 'cache-from',
    kind: 'list',
    value: 'type=registry,ref=R|type=local,src=DIR',
    help: 'use a build cache from a registry, a directory or an image pushed with type=inline',
  },
  {
    name: 'ssh',
    kind: 'list',
    value: 'default|ID=PATH[,PATH]',
    help: 'an ssh agent for RUN --mount=type=ssh: $SSH_AUTH_SOCK, an agent socket or key files',
  },
  {
    name: 'secret',
    kind: 'list',
    value: 'id=ID,src=FILE|env=VAR',
    help: 'a secret for RUN --mount=type=secret',
  },
  {
    name: 'platform',
    kind: 'string',
    value: 'OS/ARCH[/VARIANT][,...]',
    help: 'the image platform(s) (default this machine); a foreign one runs RUN steps under QEMU emulation',
  },
  rootFlag,
  { name: 'quiet', short: 'q', kind: 'bool', help: 'print only the image ID' },
  insecureFlag,
  compressionFlag('--push, --output and --cache-to'),
  ...pushCompressionFlags('--push and -o type=registry'),
];

/** A flag `docker buildx build` accepts that tsbuild does not implement; `why` is its help line and error. */
function unsupported(name: string, why: string, short?: string): FlagSpec {
  return { name, short, kind: 'string', unsupported: true, help: why };
}

// `docker buildx build --help` (buildx 0.2x), and the docker build flags it keeps as hidden ones, less what
// tsbuild implements. A flag implemented later is simply added to buildFlags: flagsOf drops its entry here.
const buildxUnsupported: FlagSpec[] = [
  unsupported('attest', 'attestations (SBOM, provenance) are not produced'),
  unsupported('provenance', 'provenance attestations are not produced'),
  unsupported('sbom', 'SBOM attestations are not produced'),
  unsupported('builder', 'there are no builder instances: tsbuild builds in its own process'),
  unsupported('call', 'only the build itself; no check, outline or targets method'),
  unsupported('cgroup-parent', 'RUN steps run in cgroups of their own, under tsbuild'),
  unsupported('detach', 'there is no buildx server to detach'),
  unsupported('memory', 'no memory limit for RUN steps', 'm'),
  unsupported('memory-swap', 'no swap limit for RUN steps'),
  unsupported('cpu-shares', 'no CPU shares for RUN steps', 'c'),
  unsupported('cpu-period', 'no CPU limit for RUN steps'),
  unsupported('cpu-quota', 'no CPU limit for RUN steps'),
  unsupported('cpuset-cpus', 'no CPU pinning for RUN steps'),
  unsupported('cpuset-mems', 'no memory-node pinning for RUN steps'),
  unsupported('security-opt', 'RUN steps always run with tsbuild’s own seccomp and capability set'),
  unsupported('isolation', 'Windows isolation modes do not exist on Linux'),
  unsupported('squash', 'layers are never squashed'),
];

const runFlags: FlagSpec[] = [
  rootFlag,
  { name: 'rm', kind: 'bool', help: 'remove the container and its anonymous volumes when it exits' },
  { name: 'detach', short: 'd', kind: 'bool', help: 'run in the background and print the container id' },
  { name: 'name', kind: 'string', value: 'NAME', help: 'container name (unique)' },
  { name: 'interactive', short: 'i', kind: 'bool', help: 'pass stdin to the container' },
  { name: 'tty', short: 't', kind: 'bool', help: 'give it a pseudo-terminal' },
  {
    name: 'env',
    short: 'e',
    kind: 'list',
    value: 'K=V|K',
    help: "set a variable (K alone: from tsbuild's environment)",
  },
  { name: 'env-file', kind: 'list', value: 'FILE', help: 'K=V lines, applied before -e' },
  { name: 'workdir', short: 'w', kind: 'string', value: 'DIR', help: "working directory (default: the image's)" },
  { name: 'user', short: 'u', kind: 'string', value: 'USER[:GROUP]', help: "name or id (default: the image's User)" },
  {
    name: 'volume',
    short: 'v',
    kind: 'list',
    value: 'HOST:CTR[:ro]|NAME:CTR[:ro]|CTR',
    help: 'a bind mount, a named volume or a new anonymous volume',
  },
  {
    name: 'mount',
    kind: 'list',
    value: 'type=bind|volume|tmpfs,src=SRC,dst=DST[,ro]',
    help: "-v's mounts as docker's --mount spells them, and a tmpfs (tmpfs-size=, tmpfs-mode=)",
  },
  {
    name: 'network',
    kind: 'string',
    aliases: ['net'],
    value: 'default|none|host|container:NAME',
    help: 'the network (default: private, with outbound access)',
  },
  {
    name: 'publish',
    short: 'p',
    kind: 'list',
    value: '[IP:]HOST:CTR[/tcp|/udp]',
    help: "forward a host port to the container's (default network only)",
  },
  { name: 'hostname', kind: 'string', value: 'NAME', help: 'hostname (default: the short id)' },
  { name: 'cpu-period', kind: 'string', value: 'N', help: 'CFS period in µs' },
  { name: 'cpu-quota', kind: 'string', value: 'N', help: 'CFS quota in µs' },
  { name: 'cpus', kind: 'string', value: 'X', help: 'X CPUs (a quota of X times the period)' },
  { name: 'memory', short: 'm', kind: 'string', value: 'SIZE', help: 'memory limit (32m, 1g; minimum 6m)' },
  { name: 'pids-limit', kind: 'string', value: 'N', help: 'at most N processes (0 or -1: no limit)' },
  { name: 'entrypoint', kind: 'string', value: 'CMD', help: "replace the image's Entrypoint ('' clears it)" },
  { name: 'init', kind: 'bool', help: 'a minimal init as PID 1 that forwards signals and reaps zombies' },
];

const execFlags: FlagSpec[] = [
  rootFlag,
  {
    name: 'env',
    short: 'e',
    kind: 'list',
    value: 'K=V|K',
    help: "set a variable (K alone: from tsbuild's environment)",
  },
  { name: 'workdir', short: 'w', kind: 'string', value: 'DIR', help: "working directory (default: the container's)" },
  { name: 'user', short: 'u', kind: 'string', value: 'USER[:GROUP]', help: "name or id (default: the container's)" },
  { name: 'interactive', short: 'i', kind: 'bool', help: 'pass stdin to the command' },
  { name: 'tty', short: 't', kind: 'bool', help: 'give it a pseudo-terminal' },
  {
    name: 'detach',
    short: 'd',
    kind: 'bool',
    help: 'start it in the background and return (its output is dropped)',
  },
];

const psFlags: FlagSpec[] = [
  rootFlag,
  { name: 'all', short: 'a', kind: 'bool', help: 'also stopped containers' },
  { name: 'quiet', short: 'q', kind: 'bool', help: 'only ids' },
  noTrunc,
  formatJson,
];

const volumeSubcommands: CommandSpec['subcommands'] = {
  ls: { usage: '[-q]', flags: [rootFlag, { name: 'quiet', short: 'q', kind: 'bool', help: 'only names' }] },
  create: { usage: '[NAME]', flags: [rootFlag] },
  inspect: { usage: 'NAME...', flags: [rootFlag] },
  rm: {
    usage: '[-f] NAME...',
    flags: [rootFlag, { name: 'force', short: 'f', kind: 'bool', help: 'also a volume in use' }],
  },
  prune: {
    usage: '[-a] [-f]',
    flags: [
      rootFlag,
      { name: 'all', short: 'a', kind: 'bool', help: 'also unused named volumes' },
      { name: 'force', short: 'f', kind: 'bool', help: 'accepted for compatibility (nothing asks)' },
    ],
  },
};

const cacheSubcommands: CommandSpec['subcommands'] = {
  ls: {
    usage: '[--format json] [--no-trunc]',
    about: 'Every record: id, layer size, last use (a hit counts), in a tagged image, the step that made it.',
    flags: [rootFlag, { ...formatJson }, noTrunc],
  },
  du: {
    usage: '[--format json]',
    about: "The records' layer bytes, and how much of it no tagged image uses (reclaimable).",
    flags: [rootFlag, { ...formatJson, help: 'one JSON object' }],
  },
  prune: {
    usage: '[--filter until=DURATION] [--keep-storage SIZE] [--all]',
    about: 'Delete records (by default those whose layer no tagged image has), then what nothing reaches.',
    flags: [
      rootFlag,
      { name: 'all', short: 'a', kind: 'bool', help: 'every record (never one a running build holds)' },
      { name: 'filter', kind: 'list', value: 'until=DURATION', help: 'only records not used for DURATION (30m, 24h)' },
      {
        name: 'keep-storage',
        kind: 'string',
        value: 'SIZE',
        help: 'least recently used first, only until the cache fits in SIZE (512m, 2g)',
      },
      { name: 'force', short: 'f', kind: 'bool', help: 'accepted for compatibility (nothing asks)' },
    ],
  },
};

export const commands: Record<string, CommandSpec> = {
  build: {
    summary: 'Build an image from a Dockerfile',
    usage: '[OPTIONS] PATH | -      (also: tsbuild [OPTIONS] PATH)',
    about:
      'Build an image from a Dockerfile and the build context at PATH\n' +
      '(-: a tar of the context on stdin, or a Dockerfile and no context).',
    flags: buildFlags,
    unsupported: buildxUnsupported,
  },
  run: {
    summary: 'Run a command in a new container',
    usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
    about:
      "Exit status: the command's; 125 when tsbuild itself failed, 126 when the command cannot run, 127 when\n" +
      'it is not found, 2 for a bad flag. Details: docs/containers.md.',
    flags: runFlags,
  },
  ps: { summary: 'List containers', usage: '[OPTIONS]', flags: psFlags },
  start: {
    summary: 'Start stopped containers',
    usage: '[-a] CONTAINER...',
    flags: [rootFlag, { name: 'attach', short: 'a', kind: 'bool', help: 'in the foreground, with output and status' }],
  },
  stop: {
    summary: 'Stop containers',
    usage: '[OPTIONS] CONTAINER...',
    flags: [
      rootFlag,
      { name: 'time', short: 't', kind: 'string', value: 'SECONDS', help: 'then SIGKILL after this long (default 10)' },
      { name: 'signal', short: 's', kind: 'string', value: 'SIGNAL', help: 'the first signal (default SIGTERM)' },
    ],
  },
  kill: {
    summary: 'Send a signal to containers',
    usage: '[-s SIGNAL] CONTAINER...',
    flags: [rootFlag, { name: 'signal', short: 's', kind: 'string', value: 'SIGNAL', help: 'default SIGKILL' }],
  },
  rm: {
    summary: 'Remove containers',
    usage: '[OPTIONS] CONTAINER...',
    flags: [
      rootFlag,
      { name: 'force', short: 'f', kind: 'bool', help: 'kill a running container first' },
      { name: 'volumes', short: 'v', kind: 'bool', help: 'also remove its anonymous volumes' },
    ],
  },
  logs: {
    summary: "Show a detached container's output",
    usage: '[-f] [-n N|all] CONTAINER',
    flags: [
      rootFlag,
      { name: 'follow', short: 'f', kind: 'bool', help: 'follow until it exits' },
      { name: 'tail', short: 'n', kind: 'string', value: 'N', help: 'only its last N lines (default all)' },
    ],
  },
  exec: {
    summary: 'Run a command in a running container',
    usage: '[OPTIONS] CONTAINER COMMAND [ARG...]',
    flags: execFlags,
  },
  commit: {
    summary: "Make an image from a container's changes",
    usage: '[OPTIONS] CONTAINER [REF]',
    flags: [
      rootFlag,
      {
        name: 'change',
        short: 'c',
        kind: 'list',
        value: 'INSTRUCTION',
        help: 'a Dockerfile instruction (CMD, ENV, ...)',
      },
      { name: 'message', short: 'm', kind: 'string', value: 'MSG', help: 'commit message' },
      { name: 'author', short: 'a', kind: 'string', value: 'AUTHOR', help: 'author' },
      {
        name: 'pause',
        short: 'p',
        kind: 'bool',
        help: 'pause a running container during the commit (default true)',
      },
    ],
  },
  volume: {
    summary: 'Manage volumes (ls, create, inspect, rm, prune)',
    usage: 'ls|create|inspect|rm|prune [OPTIONS]',
    flags: [],
    subcommands: volumeSubcommands,
  },
  container: {
    summary: 'Container commands by their docker names (container ls, inspect, ...)',
    usage: 'ls|run|start|stop|kill|rm|logs|inspect|exec|commit ...',
    about: "The container commands under docker's management-command names; see each: tsbuild ps --help, ...",
    flags: [],
  },
  image: {
    summary: 'Image commands by their docker names (image ls, rm, inspect, ...)',
    usage: 'ls|rm|inspect|tag|history|save|load|prune|pull|push ...',
    about: "The image commands under docker's management-command names; see each: tsbuild images --help, ...",
    flags: [],
    subcommands: {
      prune: {
        usage: '[-a] [-f]',
        about: 'Untag unused images (docker image prune), then collect what nothing reaches. Asks unless -f.',
        flags: [
          rootFlag,
          { name: 'all', short: 'a', kind: 'bool', help: 'every image no container (running or stopped) uses' },
          { name: 'force', short: 'f', kind: 'bool', help: 'do not ask for confirmation' },
        ],
      },
    },
  },
  images: {
    summary: 'List images',
    usage: '[OPTIONS] [REPOSITORY[:TAG]]',
    flags: [
      rootFlag,
      { name: 'quiet', short: 'q', kind: 'bool', help: 'only image IDs' },
      {
        name: 'all',
        short: 'a',
        kind: 'bool',
        help: 'accepted for compatibility (a build leaves no intermediate images: all are listed)',
      },
      noTrunc,
      {
        name: 'format',
        kind: 'string',
        value: 'json|TEMPLATE',
        help: "json: a JSON array; else a Go template per image ('table ...' adds a header)",
      },
      {
        name: 'filter',
        kind: 'list',
        value: 'reference=PATTERN|dangling=BOOL|label=K[=V]',
        help: 'only matching images (repeatable: references ORed, the rest ANDed)',
      },
    ],
  },
  history: {
    summary: "Show an image's history: a row per Dockerfile step, newest first",
    usage: '[OPTIONS] IMAGE',
    flags: [
      rootFlag,
      { name: 'no-trunc', kind: 'bool', help: 'full ids and commands' },
      { name: 'quiet', short: 'q', kind: 'bool', help: 'only image IDs' },
      { name: 'human', short: 'H', kind: 'bool', help: 'sizes and dates for people (default true)' },
      {
        name: 'format',
        kind: 'string',
        value: 'json|TEMPLATE',
        help: "json: one object per line; else a Go template per row ('table ...' adds a header)",
      },
    ],
  },
  inspect: {
    summary: "Show an image's manifest, config and layers (or a container's state)",
    usage: '[--type image|container] [--format TEMPLATE] REF...',
    flags: [
      rootFlag,
      { name: 'type', kind: 'string', value: 'image|container', help: 'what REF names' },
      {
        name: 'format',
        short: 'f',
        kind: 'string',
        value: 'TEMPLATE',
        help: "a Go template per REF, as docker's (e.g. '{{.Id}}', '{{json .Config}}')",
      },
    ],
  },
  tag: { summary: 'Add a tag to an image', usage: 'SOURCE TARGET', flags: [rootFlag] },
  rmi: {
    summary: 'Remove tags',
    usage: 'REF|ID...',
    flags: [
      rootFlag,
      {
        name: 'force',
        short: 'f',
        kind: 'bool',
        help: 'remove every tag of an image given by ID, or the last tag of one a container uses',
      },
      {
        name: 'no-prune',
        kind: 'bool',
        help: "accepted for compatibility (docker's: keep untagged parents; tsbuild images have none)",
      },
    ],
  },
  prune: {
    summary: 'Remove unreferenced blobs, snapshots and cache entries (never what is in use)',
    usage: '[OPTIONS]',
    about:
      'Remove blobs, snapshots and cache records that no tag, cache record or lease reaches. What a\n' +
      'running build, run, push, pull, commit or export uses, and what a container needs, is leased and\n' +
      'never removed, whatever its age.',
    flags: [
      rootFlag,
      {
        name: 'all',
        short: 'a',
        kind: 'bool',
        help: 'also drop the build cache (records not in use by a running build)',
      },
      { name: 'force', short: 'f', kind: 'bool', help: 'accepted for compatibility (nothing asks)' },
      {
        name: 'grace',
        kind: 'string',
        value: 'DURATION',
        help: 'also keep unreferenced data younger than this (default 15m; 0 to keep none)',
      },
    ],
  },
  cache: {
    summary: 'The build cache: ls, du, prune (docker buildx du / prune)',
    usage: 'ls|du|prune [OPTIONS]',
    about: "The build cache: one record per filesystem step, its layer under the step's cache key.",
    flags: [],
    subcommands: cacheSubcommands,
  },
  check: {
    summary: 'Verify every blob, tag, cache record and snapshot (--repair drops what is broken)',
    usage: '[--repair]',
    about:
      "Verify the store, like git fsck: every blob against its digest, every tag's image (manifests,\n" +
      'configs, layers present, sizes as described), every cache record and snapshot entry. Expired\n' +
      'leases (of processes that are gone) are removed. Prints what is wrong; exits 1 if anything is.',
    flags: [
      rootFlag,
      {
        name: 'repair',
        kind: 'bool',
        help: 'drop what cannot be fixed (corrupt blobs, incomplete tags, bad cache records, stray snapshots)',
      },
    ],
  },
  save: {
    summary: 'Write images to an archive (docker load-able, or OCI)',
    usage: 'REF... [-o FILE] [--format docker|oci] [--compression gzip|zstd|none]',
    flags: [
      rootFlag,
      { name: 'output', short: 'o', kind: 'string', value: 'FILE', help: 'the archive to write (default: stdout)' },
      { name: 'format', kind: 'string', value: 'docker|oci', help: 'the archive layout (default docker)' },
      compressionFlag('the archive (zstd: --format oci only)'),
    ],
  },
  load: {
    summary: 'Import an archive',
    usage: '[-i FILE]',
    flags: [
      rootFlag,
      { name: 'input', short: 'i', kind: 'string', value: 'FILE', help: 'the archive to read (default: stdin)' },
      { name: 'quiet', short: 'q', kind: 'bool', help: 'accepted for compatibility' },
    ],
  },
  pull: {
    summary: 'Fetch an image from a registry',
    usage: '[OPTIONS] NAME[:TAG|@DIGEST]',
    flags: [
      rootFlag,
      insecureFlag,
      { name: 'platform', kind: 'string', value: 'OS/ARCH', help: 'which image of a multi-platform index' },
      progressFlag,
      quietFlag,
    ],
  },
  push: {
    summary: 'Push an image to a registry',
    usage: '[OPTIONS] NAME[:TAG]',
    flags: [
      rootFlag,
      insecureFlag,
      progressFlag,
      quietFlag,
      compressionFlag('the push'),
      ...pushCompressionFlags('the push'),
    ],
  },
  login: {
    summary: 'Log in to a registry',
    usage: '[-u USER] [-p PASS | --password-stdin] REGISTRY',
    flags: [
      { name: 'username', short: 'u', kind: 'string', value: 'USER', help: 'user name' },
      { name: 'password', short: 'p', kind: 'string', value: 'PASS', help: 'password (visible to ps: prefer stdin)' },
      { name: 'password-stdin', kind: 'bool', help: 'read the password from stdin' },
      insecureFlag,
    ],
  },
  logout: { summary: 'Log out from a registry (Docker Hub by default)', usage: '[REGISTRY]', flags: [] },
  info: {
    summary: 'Show how tsbuild runs here (rootless, id mappings, store, overlay, network, limits)',
    usage: '[OPTIONS]',
    flags: [{ name: 'format', kind: 'string', value: 'json', help: 'everything as one JSON object' }, rootFlag],
  },
  parse: {
    summary: "Print a Dockerfile's instruction graph",
    usage: '[OPTIONS] [PATH]',
    flags: [
      { name: 'file', short: 'f', kind: 'string', value: 'FILE', help: 'Dockerfile (default PATH/Dockerfile)' },
      { name: 'format', kind: 'string', value: 'json|buildkit', help: 'the graph as JSON, or BuildKit’s dump' },
      { name: 'build-arg', kind: 'list', value: 'K=V', help: 'set a build arg' },
      { name: 'target', kind: 'string', value: 'STAGE', help: 'up to that stage' },
    ],
  },
};

/** A command's spec, or a subcommand's (`volume ls`), for the parser. */
export function flagsOf(command: string, sub?: string): FlagSpec[] {
  const c = commands[command];
  if (!c) throw new Error(`internal: no flag spec for ${command}`);
  if (sub === undefined) {
    const implemented = new Set(c.flags.map((f) => f.name));
    return [...c.flags, ...(c.unsupported ?? []).filter((f) => !implemented.has(f.name))];
  }
  const s = c.subcommands?.[sub];
  if (!s) throw new Error(`internal: no flag spec for ${command} ${sub}`);
  return s.flags;
}
