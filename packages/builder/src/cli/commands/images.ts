// Image commands over the store: images, inspect, tag, rmi, prune, save, load.
import { resolve } from 'node:path';
import { isatty } from 'node:tty';
import {
  archive,
  check,
  compressedImage,
  familiarName,
  parseReference,
  unpackedLayerSizes,
  type Store,
} from '@tsbuild/layerstore';
import { bool, list, parseArgs, str } from '../args.js';
import { flagsOf } from '../flags.js';
import { openStore } from '../root.js';
import { errorLine } from '../report.js';
import { ago, humanSize, table } from '../table.js';
import { BuildError, UsageError } from '../../errors.js';
import { checkDockerArchiveCompression, parseCompression, refuseDigestTag } from '../../options.js';
import { trace } from '../../trace.js';
import { toStdout } from '../../exporter/outputs.js';
import { parseTemplate, render } from '../template.js';
import {
  historyHeaders,
  historyRows,
  imageHeaders,
  imageRow,
  inspectDocument,
  matchesFilter,
  parseImageFilters,
} from '../imageviews.js';

async function image(store: Store, ref: string) {
  const img = await store.images.get(ref).catch((e: Error) => {
    throw new BuildError(`${ref}: ${e.message}`);
  });
  if (!img) throw new BuildError(`No such image: ${ref}`);
  return img;
}

export async function imagesCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('images'));
  if (p.positionals.length > 1)
    throw new UsageError(
      '"tsbuild images" requires at most 1 argument\nUsage: tsbuild images [OPTIONS] [REPOSITORY[:TAG]]',
    );
  // As docker's CLI: the argument is one more reference filter (a pattern on the repository, or on NAME:TAG).
  const filter = parseImageFilters([...list(p, 'filter'), ...p.positionals.map((r) => `reference=${r}`)]);
  const format = str(p, 'format');
  // Parsed before the store is read: a bad template is a usage error whatever the store holds.
  const template = format && format !== 'json' && format !== 'table' ? parseFormat(format) : undefined;
  const store = await openStore(str(p, 'root'));
  // Newest first, as docker's daemon lists them (the store's index is in name order); a stable sort keeps an
  // image's tags, and the same second's images, in name order. A broken image, with no time, comes last.
  const time = (r: { created?: string }) => (r.created ? Date.parse(r.created) || 0 : 0);
  const rows = (await store.images.list()).filter((r) => matchesFilter(r, filter)).sort((a, b) => time(b) - time(a));
  // As docker, the layers' unpacked size: a pulled or loaded image's layers are stored compressed.
  if (!bool(p, 'quiet') || format === 'json') {
    for (const r of rows) {
      if (!r.image || r.broken) continue;
      const stored = r.image.layers.reduce((n, l) => n + l.size, 0);
      const unpacked = (await unpackedLayerSizes(store, r.image.layers)).reduce((n, s) => n + s, 0);
      r.size += unpacked - stored;
    }
  }
  if (format === 'json') {
    // tsbuild's documented array (docs/cli.md); docker's one object per line is --format '{{json .}}'.
    process.stdout.write(
      JSON.stringify(
        rows.map(({ image: _, ...r }) => r),
        null,
        2,
      ) + '\n',
    );
    return 0;
  }
  const short = (d: string) => (bool(p, 'no-trunc') ? d : d.replace(/^sha256:/, '').slice(0, 12));
  // A broken image is listed (SIZE says so) and explained on stderr, never hidden.
  for (const r of rows.filter((x) => x.broken)) {
    const what = [...r.broken!.missing.map((d) => `blob ${d} is missing`), ...r.broken!.problems].join('; ');
    process.stderr.write(`WARNING: ${r.repository}:${r.tag} is broken: ${what}; run 'tsbuild check'\n`);
  }
  if (bool(p, 'quiet')) {
    for (const r of rows) process.stdout.write(`${short(r.id)}\n`);
    return 0;
  }
  if (template) {
    process.stdout.write(
      template(
        rows.map((r) => imageRow(r, bool(p, 'no-trunc'))),
        imageHeaders,
      ),
    );
    return 0;
  }
  const size = (r: (typeof rows)[number]) => (r.broken ? 'BROKEN' : humanSize(r.size));
  const row = (r: (typeof rows)[number]) => [r.repository, r.tag, short(r.id), ago(r.created), size(r)];
  process.stdout.write(table([['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], ...rows.map(row)]));
  return 0;
}

/**
 * A `--format` value as docker takes it for a listing: a Go template applied to each row, or
 * `table TEMPLATE` (columns split at tabs, aligned, under a header naming each field as docker does).
 */
function parseFormat(format: string): (rows: object[], headers: Record<string, string>) => string {
  const isTable = /^table\s/.test(format);
  // As docker's formatter: a `\t` or `\n` typed in the format (in quotes, as its examples are) is a tab, a newline.
  const body = (isTable ? format.replace(/^table\s+/, '') : format).replace(/\\[tn]/g, (e) =>
    e === '\\t' ? '\t' : '\n',
  );
  const t = parseTemplate(body);
  return (rows, headers) => {
    if (!isTable) return rows.map((r) => render(t, r) + '\n').join('');
    const cells = (text: string) => text.split('\t');
    return table([cells(render(t, headers)), ...rows.map((r) => cells(render(t, r)))]);
  };
}

/** `tsbuild image SUBCOMMAND`: the same commands under docker's management-command names. */
export async function imageCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const [sub, ...rest] = argv;
  const { pullCommand, pushCommand } = await import('./registry.js');
  const subs: Record<string, (a: string[], s: AbortSignal) => Promise<number>> = {
    ls: imagesCommand,
    list: imagesCommand,
    rm: rmiCommand,
    remove: rmiCommand,
    inspect: inspectCommand,
    tag: tagCommand,
    history: historyCommand,
    save: saveCommand,
    load: loadCommand,
    prune: imagePruneCommand,
    pull: pullCommand,
    push: pushCommand,
  };
  const f = sub && Object.hasOwn(subs, sub) ? subs[sub] : undefined;
  if (!f) throw new UsageError(`"tsbuild image" needs a subcommand: ${Object.keys(subs).join(', ')}`);
  return f(rest, signal);
}

export async function historyCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('history'));
  if (p.positionals.length !== 1) throw new UsageError('"tsbuild history" requires exactly 1 argument: IMAGE');
  const format = str(p, 'format');
  const template = format && format !== 'json' && format !== 'table' ? parseFormat(format) : undefined;
  const human = p.flags.has('human') ? bool(p, 'human') : true;
  const store = await openStore(str(p, 'root'));
  const img = await image(store, p.positionals[0]);
  const layerSizes = bool(p, 'quiet') ? undefined : await unpackedLayerSizes(store, img.layers);
  const rows = historyRows(img, { noTrunc: bool(p, 'no-trunc'), human, layerSizes });
  if (bool(p, 'quiet')) process.stdout.write(rows.map((r) => `${r.ID}\n`).join(''));
  else if (format === 'json') process.stdout.write(rows.map((r) => goJson(r) + '\n').join(''));
  else if (template) process.stdout.write(template(rows, historyHeaders));
  else {
    const cols = ['ID', 'CreatedSince', 'CreatedBy', 'Size', 'Comment'] as const;
    process.stdout.write(table([cols.map((c) => historyHeaders[c]), ...rows.map((r) => cols.map((c) => r[c]))]));
  }
  return 0;
}

/** JSON as Go's encoding/json writes it (docker's --format json): <, > and & escaped. */
function goJson(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export async function inspectCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('inspect'));
  if (p.positionals.length === 0) throw new UsageError('"tsbuild inspect" requires at least 1 argument: REF');
  const format = str(p, 'format');
  const template = format === undefined || format === 'json' ? undefined : parseTemplate(format);
  const store = await openStore(str(p, 'root'));
  const tags = await store.images.list();
  // As docker: a reference that names nothing is reported and the others are still shown; exit 1.
  if (p.positionals.length === 1) {
    const doc = inspectDocument(await image(store, p.positionals[0]!), tags);
    process.stdout.write(template ? render(template, doc) + '\n' : JSON.stringify(doc, null, 2) + '\n');
    return 0;
  }
  const out = [];
  const missing: string[] = [];
  for (const ref of p.positionals) {
    const img = await store.images.get(ref).catch((e: Error) => e);
    if (img instanceof Error) missing.push(`${ref}: ${img.message}`);
    else if (img) out.push(inspectDocument(img, tags));
    else missing.push(`No such image: ${ref}`);
  }
  if (template) process.stdout.write(out.map((doc) => render(template, doc) + '\n').join(''));
  else process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  for (const why of missing) process.stderr.write(errorLine(why));
  return missing.length ? 1 : 0;
}

export async function tagCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('tag'));
  if (p.positionals.length !== 2) throw new UsageError('"tsbuild tag" requires exactly 2 arguments: SOURCE TARGET');
  const target = p.positionals[1];
  // A name that does not parse is left to tagDescriptor's own error.
  refuseDigestTag(target, target);
  const store = await openStore(str(p, 'root'), 'tag');
  const img = await image(store, p.positionals[0]);
  // A tag is copied as it is: one naming an index (a multi-platform image) names it under the new
  // name too, as docker tags an index, so that pushing the new name pushes every platform.
  const named = await store.tags.get(p.positionals[0]).catch(() => undefined);
  const desc = named ?? (await store.images.descriptor(img));
  await store.images.tagDescriptor(p.positionals[1], desc).catch((e: Error) => {
    throw new UsageError(`${p.positionals[1]}: ${e.message}`);
  });
  return 0;
}

export async function rmiCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('rmi'));
  if (p.positionals.length === 0) throw new UsageError('"tsbuild rmi" requires at least 1 argument');
  const store = await openStore(str(p, 'root'));
  let failed = 0;
  const force = bool(p, 'force');
  for (const ref of p.positionals) {
    const used = force ? undefined : await lastTagInUse(store, ref);
    if (used) {
      process.stderr.write(
        errorLine(
          `conflict: unable to remove repository reference "${ref}" (must force) - container ${used.container} ` +
            `is using its referenced image ${used.image}`,
        ),
      );
      failed++;
      continue;
    }
    if (await store.tags.delete(ref).catch(() => false)) {
      process.stdout.write(`Untagged: ${ref}\n`);
      continue;
    }
    // Not a tag: an image ID (a prefix, or sha256:...), as docker rmi takes it. Its one tag goes; when
    // several tags name it, only -f removes them all (docker's "referenced in multiple repositories").
    const problem = await rmiById(store, ref, force).catch((e: Error) => `${ref}: ${e.message}`);
    if (problem) {
      process.stderr.write(errorLine(problem));
      failed++;
    }
  }
  return failed ? 1 : 0;
}

/**
 * A container (its short id) made from the image `configDigest`, if any: docker keeps such an image's last
 * tag (and the image) unless forced. Loaded only when asked, as `ps` loads it.
 */
async function containerUsing(store: Store, configDigest: string): Promise<{ id: string; state: string } | undefined> {
  const { listContainers } = await import('@tsbuild/containers');
  const c = (await listContainers(store, { all: true })).find((d) => d.Config.image.configDigest === configDigest);
  return c && { id: c.Id.slice(0, 12), state: c.State.Status === 'running' ? 'running' : 'stopped' };
}

/** For `rmi TAG`: the container that uses the tag's image, when the tag is that image's last. */
async function lastTagInUse(store: Store, ref: string): Promise<{ container: string; image: string } | undefined> {
  const img = await store.images.get(ref).catch(() => undefined);
  if (!img || !(await store.tags.get(ref).catch(() => undefined))) return undefined;
  if ((await store.images.list()).filter((r) => r.id === img.configDigest).length > 1) return undefined;
  const container = await containerUsing(store, img.configDigest);
  return container ? { container: container.id, image: img.configDigest.slice(7, 19) } : undefined;
}

async function rmiById(store: Store, ref: string, force: boolean): Promise<string | undefined> {
  if (!/^(sha256:)?[0-9a-f]{4,64}$/.test(ref)) return `No such image: ${ref}`;
  const img = await store.images.get(ref);
  // images.get also takes a whole manifest digest; the id form is the image id (config digest) only, as docker's.
  if (!img?.configDigest.slice(7).startsWith(ref.replace(/^sha256:/, ''))) return `No such image: ${ref}`;
  const tagged = (await store.images.list()).filter((r) => r.id === img.configDigest);
  if (tagged.length === 0) return `No such image: ${ref}`;
  const short = img.configDigest.slice(7, 19);
  if (tagged.length > 1 && !force)
    return `conflict: unable to delete ${short} (must be forced) - image is referenced in multiple repositories`;
  const user = force ? undefined : await containerUsing(store, img.configDigest);
  if (user)
    return (
      `conflict: unable to delete ${short} (must be forced) - ` +
      `image is being used by ${user.state} container ${user.id}`
    );
  for (const r of tagged)
    if (await store.tags.delete(r.reference)) process.stdout.write(`Untagged: ${r.repository}:${r.tag}\n`);
  return undefined;
}

export async function pruneCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('prune'));
  const grace = str(p, 'grace');
  const gracePeriodMs = grace === undefined ? undefined : parseDuration(grace, '--grace');
  const store = await openStore(str(p, 'root'));
  // --all also drops the build cache (docker builder prune -a); by default the cache keeps its layers.
  const r = await store.prune({ gracePeriodMs, allCache: bool(p, 'all') });
  const expired = r.leases ? `, ${r.leases} expired leases` : '';
  const counts = `${r.blobs} blobs, ${r.snapshots} snapshots, ${r.cacheRecords} cache records`;
  process.stdout.write(`Deleted ${counts}, ${r.temp} leftover temp entries${expired}\n`);
  process.stdout.write(`Total reclaimed space: ${humanSize(r.bytes)}\n`);
  return 0;
}

/**
 * `image prune [-a] [-f]`, as docker's: with -a, untag every image no container (running or stopped) was made
 * from, then let the store's collection reclaim what nothing reaches. Without -a only dangling images go, and
 * the store keeps none (an image is kept by its tags), so nothing is untagged. Without -f it asks on stdout and
 * reads one line from stdin, TTY or not, as docker does: only "y" or "yes" goes on; anything else (EOF too)
 * leaves the store untouched, exit 0.
 */
export async function imagePruneCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('image', 'prune'));
  if (p.positionals.length)
    throw new UsageError('"tsbuild image prune" accepts no arguments\nUsage: tsbuild image prune [-a] [-f]');
  const all = bool(p, 'all');
  if (!bool(p, 'force')) {
    const warning = all
      ? 'WARNING! This will remove all images without at least one container associated to them.'
      : 'WARNING! This will remove all dangling images.';
    process.stdout.write(`${warning}\nAre you sure you want to continue? [y/N] `);
    const answer = (await stdinLine()).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') return 0;
  }
  const store = await openStore(str(p, 'root'));
  const lines: string[] = [];
  if (all) {
    const { listContainers } = await import('@tsbuild/containers');
    const used = new Set<string>((await listContainers(store, { all: true })).map((c) => c.Config.image.configDigest));
    const untagged = new Set<string>();
    for (const r of await store.images.list()) {
      if (used.has(r.id)) continue;
      if (await store.tags.delete(r.reference)) {
        lines.push(`untagged: ${r.repository}:${r.tag}`);
        untagged.add(r.id);
      }
    }
    // An image is deleted once its last tag is gone (a tag made meanwhile keeps it).
    const left = new Set<string>((await store.images.list()).map((r) => r.id));
    for (const id of untagged) if (!left.has(id)) lines.push(`deleted: ${id}`);
  }
  const r = await store.prune({});
  if (lines.length) process.stdout.write(`Deleted Images:\n${lines.join('\n')}\n\n`);
  process.stdout.write(`Total reclaimed space: ${humanSize(r.bytes)}\n`);
  return 0;
}

/** One line of stdin (without its newline), or what there was at EOF. */
async function stdinLine(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    const nl = text.indexOf('\n');
    if (nl >= 0) return text.slice(0, nl);
  }
  return text;
}

export async function checkCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('check'));
  if (p.positionals.length) throw new UsageError('"tsbuild check" takes no arguments\nUsage: tsbuild check [--repair]');
  const store = await openStore(str(p, 'root'));
  const repair = bool(p, 'repair');
  const r = await check(store, { repair });
  for (const line of r.problems) process.stdout.write(`problem: ${line}\n`);
  for (const line of r.repaired) process.stdout.write(`repaired: ${line}\n`);
  for (const line of r.notes) process.stdout.write(`note: ${line}\n`);
  const c = r.counts;
  const expired = c.leasesExpired ? `; removed ${c.leasesExpired} expired leases` : '';
  const found = r.problems.length ? `${r.problems.length} problems` : 'no problems';
  const what = `${c.blobs} blobs, ${c.tags} tags, ${c.cacheRecords} cache records, ${c.snapshots} snapshots`;
  process.stdout.write(`checked ${what}${expired}: ${found}\n`);
  // With --repair, a problem counts as fixed once what it was about has been dropped.
  return r.remaining > 0 ? 1 : 0;
}

export async function saveCommand(argv: string[], signal?: AbortSignal): Promise<number> {
  const p = parseArgs(argv, flagsOf('save'));
  if (p.positionals.length === 0) throw new UsageError('"tsbuild save" requires at least 1 argument: REF');
  const compression = parseCompression(str(p, 'compression'));
  const out = str(p, 'output');
  // As `docker save`: without -o the archive goes to stdout (`tsbuild save IMG | ssh host docker load`), never a
  // terminal's.
  if (!out && isatty(1))
    throw new UsageError(
      '"tsbuild save" writes the archive to stdout, and stdout is a terminal: give -o FILE or redirect',
    );
  const format = str(p, 'format') ?? 'docker';
  if (format !== 'docker' && format !== 'oci') throw new UsageError(`--format: "${format}" is not docker or oci`);
  if (format === 'docker')
    checkDockerArchiveCompression(compression, `${out ? `-o ${out}` : 'save'} (--format docker)`);
  const store = await openStore(str(p, 'root'), 'save');
  const named = [];
  for (const ref of p.positionals) {
    // Layers a build stored uncompressed are compressed here, once: the archive's manifest names those blobs.
    const made = await compressedImage(store, await image(store, ref), compression);
    trace(`save ${ref}: ${made.compressed} layers compressed`);
    named.push({ image: made.image, name: /^sha256:|^[0-9a-f]{12,64}$/.test(ref) ? undefined : ref });
  }
  if (out) await archive.write(store, named, resolve(out), { format });
  else await toStdout(await archive.stream(store, named, { format }), signal, 'save');
  return 0;
}

function familiar(name: string): string {
  try {
    return familiarName(parseReference(name));
  } catch {
    return name;
  }
}

export async function loadCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('load'));
  const input = str(p, 'input');
  // As `docker load`: without -i the archive comes on stdin (`tsbuild save IMG | ssh host tsbuild load`).
  if (!input && process.stdin.isTTY)
    throw new UsageError('"tsbuild load" reads an archive from stdin or -i FILE, and stdin is a terminal');
  const store = await openStore(str(p, 'root'), 'load');
  const loaded = await archive.load(store, input ? resolve(input) : process.stdin);
  for (const { names, image } of loaded) {
    if (names.length === 0) process.stdout.write(`Loaded image ID: ${image.configDigest}\n`);
    // Named as docker load names them: docker.io/library/ left out.
    for (const name of names) process.stdout.write(`Loaded image: ${familiar(name)}\n`);
  }
  return 0;
}

/** 0, 90s, 15m, 2h: how long unreferenced data is kept before prune may take it. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: "${text}" is not a duration (e.g. 0, 30s, 15m, 2h)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}
