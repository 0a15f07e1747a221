// Build outputs (-o), with buildx's rules (its controller/pb/export.go): an OCI or docker archive or
// layout, the root filesystem as files (type=local) or as one tar (type=tar), to a path or to stdout.
import { resolve } from 'node:path';
import { promises as fsp, statSync } from 'node:fs';
import { isatty } from 'node:tty';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  archive,
  compressedImage,
  layout,
  parseReference,
  type Compression,
  type Image,
  type Store,
} from '@tsbuild/layerstore';
import { entriesFromDirectory, exportRootfs, tarStream } from '@tsbuild/layerstore/layer';
import { mkdirs, removeTreeBeneath, writeFileAtomic } from '@tsbuild/sys';
import type { Reporter } from '../progress/index.js';
import { trace } from '../trace.js';
import { BuildError, UsageError } from '../errors.js';
import { goBool, parseCompressionLevel, parseCsv, refuseDigestTag } from '../options.js';

/** The dest that means stdout. */
export const STDOUT = '-';

export interface Output {
  /** image (type=registry is image with push=true) and cacheonly write no file: build.ts acts on them. */
  type: 'oci' | 'docker' | 'local' | 'tar' | 'image' | 'cacheonly';
  /**
   * A resolved path, STDOUT, or '' only for type=docker: load into the Docker daemon (--load).
   * A file for type=tar and for oci/docker with `tar`, else a directory. '' for image and cacheonly.
   */
  dest: string;
  /** oci/docker: an archive (true, buildx's default) or a layout directory (tar=false). */
  tar: boolean;
  /** type=image: BuildKit's image exporter keys that tsbuild takes. */
  image?: ImageOutput;
}

export interface ImageOutput {
  /** name=: the names, as given (one field, split at commas, as BuildKit splits it); -t replaces them. */
  names: string[];
  push: boolean;
  /** registry.insecure: the names' registries over plain HTTP or unverified TLS. */
  insecure: boolean;
  /** compression= for this output's push; --compression when not given. */
  compression?: Compression;
  /** compression-level= (checked against compression=, or --compression's when not given: build.ts). */
  level?: string;
  /** force-compression=: layers compressed otherwise (a pulled base's) recompressed too. */
  force?: boolean;
}

const TYPES = "oci, docker, tar, local, image, registry, cacheonly (oci-archive: tsbuild's name for type=oci)";
const IMAGE_KEYS = [
  'type',
  'name',
  'push',
  'registry.insecure',
  'compression',
  'force-compression',
  'compression-level',
  'oci-mediatypes',
  'unpack',
];

export function parseOutput(spec: string): Output {
  const flag = `--output ${spec}`;
  // `-o DIR` alone is type=local and `-o -` the root filesystem's tar on stdout, as in buildx.
  if (spec === STDOUT) return { type: 'tar', dest: STDOUT, tar: true };
  if (!spec.includes('=')) return checked(flag, { type: 'local', dest: resolve(spec), tar: false });
  const kv = outputFields(spec, flag);
  let type = kv.get('type');
  if (!type) throw new UsageError(`${flag}: type= is required (${TYPES})`);
  if (type === 'image' || type === 'registry') return imageOutput(flag, type, kv);
  const known = type === 'cacheonly' ? ['type'] : ['type', 'dest', 'name', 'tar'];
  for (const k of kv.keys()) if (!known.includes(k)) throw new UsageError(`${flag}: unknown key "${k}"`);
  if (type === 'cacheonly') return { type, dest: '', tar: false };
  const rawDest = kv.get('dest') ?? '';
  // buildx: tar= unset or not a Go bool is true. `oci-archive` is tsbuild's older name for the archive.
  let tar = goBool(kv.get('tar') ?? '') ?? true;
  if (type === 'oci-archive') [type, tar] = ['oci', true];
  if (!['oci', 'docker', 'local', 'tar'].includes(type))
    throw new UsageError(`${flag}: unknown type "${type}" (${TYPES})`);
  const t = type as Output['type'];
  if (t === 'local' || !tar) {
    if (!rawDest) throw new UsageError(`${flag}: dest is required for ${t} exporter`);
    if (rawDest === STDOUT) throw new UsageError(`${flag}: dest cannot be stdout for ${t} exporter`);
    return checked(flag, { type: t, dest: resolve(rawDest), tar: false });
  }
  // An archive. No dest: stdout for oci and tar; for docker, the Docker daemon (--load, build.ts).
  if (!rawDest) return { type: t, dest: t === 'docker' ? '' : STDOUT, tar };
  return checked(flag, { type: t, dest: rawDest === STDOUT ? STDOUT : resolve(rawDest), tar });
}

/** The spec's key=value fields, split as buildx splits them (parseCsv), keys lower-cased as buildx does. */
function outputFields(spec: string, flag: string): Map<string, string> {
  return new Map([...parseCsv(spec, flag)].map(([k, v]) => [k.toLowerCase(), v]));
}

/**
 * type=image / type=registry: BuildKit's image exporter (exporter/containerimage). Its boolean keys are Go
 * bools, an empty value true. type=registry always pushes (buildx sets push=true over what was given).
 * BuildKit keeps a key it does not know as metadata and ignores it; here it is an error, as for the other
 * types. What tsbuild cannot do is refused, not ignored.
 */
function imageOutput(flag: string, type: string, kv: Map<string, string>): Output {
  for (const k of kv.keys())
    if (!IMAGE_KEYS.includes(k)) throw new UsageError(`${flag}: unknown key "${k}" (${IMAGE_KEYS.join(', ')})`);
  const bool = (key: string): boolean | undefined => {
    const v = kv.get(key);
    if (v === undefined) return undefined;
    const b = v === '' ? true : goBool(v);
    if (b === undefined) throw new UsageError(`${flag}: ${key}: "${v}" is not a boolean (true or false)`);
    return b;
  };
  const names = kv.has('name') ? kv.get('name')!.split(',') : [];
  for (const n of names) {
    try {
      parseReference(n);
    } catch (e) {
      throw new UsageError(`${flag}: name "${n}": ${(e as Error).message}`);
    }
    refuseDigestTag(n, `${flag}: name "${n}"`);
  }
  // unpack= (buildx writes unpack=false for type=registry): the store has no unpacked copy to make or skip.
  bool('unpack');
  const c = kv.get('compression');
  const compressions: Record<string, Compression> = { gzip: 'gzip', zstd: 'zstd', uncompressed: 'none' };
  if (c !== undefined && !compressions[c])
    throw new UsageError(`${flag}: compression: "${c}" is not one of gzip, zstd, uncompressed`);
  // compression-level= is an integer here; its range depends on the compression, which --compression may give.
  const level = kv.get('compression-level');
  if (level !== undefined) parseCompressionLevel(level, 'none', `${flag}: compression-level`);
  // Built images have OCI media types; tsbuild does not rewrite them as Docker's.
  if (bool('oci-mediatypes') === false)
    throw new UsageError(`${flag}: oci-mediatypes=false: not supported (tsbuild writes OCI media types)`);
  const image: ImageOutput = {
    names,
    push: type === 'registry' || (bool('push') ?? false),
    insecure: bool('registry.insecure') ?? false,
    compression: c === undefined ? undefined : compressions[c],
    level,
    force: bool('force-compression'),
  };
  return { type: 'image', dest: '', tar: false, image };
}

/**
 * A directory dest must not be a file, nor a file dest a directory (buildx's words), nor either beneath a
 * file. Said before the build rather than after it. A file dest's missing directory is not: another output
 * of the build (a directory) may make it; the archive writer names it if it is still missing.
 */
function checked(flag: string, o: Output): Output {
  if (o.dest === STDOUT || !o.dest) return o;
  const st = statOrUndefined(o.dest);
  const dir = o.type === 'local' || !o.tar;
  if (st === 'ENOTDIR') throw new UsageError(`${flag}: ${o.dest}: a directory above it is a file`);
  if (dir && st && !st.isDirectory()) throw new UsageError(`${flag}: destination directory ${o.dest} is a file`);
  if (!dir && st?.isDirectory()) throw new UsageError(`${flag}: destination file ${o.dest} is a directory`);
  return o;
}

/** What is at path: undefined if nothing, 'ENOTDIR' beneath a file. */
function statOrUndefined(path: string) {
  try {
    return statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') return code;
    throw e;
  }
}

/**
 * The outputs together: at most one writes to stdout, and not to a terminal. Returns whether one does:
 * then nothing else may write to stdout (build.ts).
 */
export function checkOutputs(outputs: Output[], stdoutIsTty = isatty(1)): boolean {
  const toStdout = outputs.filter((o) => o.dest === STDOUT);
  if (toStdout.length > 1) throw new UsageError('--output: multiple outputs configured to write to stdout');
  if (toStdout.length && stdoutIsTty)
    throw new UsageError(
      `--output: dest file is required for ${toStdout[0].type} exporter. refusing to write to console`,
    );
  return toStdout.length === 1;
}

/**
 * Writes the image as `o` asks. Image outputs name compressed layers (`compression`, default gzip):
 * the layers a build stored uncompressed are compressed into the store first, or found there from
 * an earlier push or export, so the same layer always leaves as the same blob.
 */
export async function exportImage(
  store: Store,
  stored: Image,
  tags: string[],
  o: Output,
  opts: { compression?: Compression; reporter?: Reporter; signal?: AbortSignal } = {},
): Promise<void> {
  if (o.type === 'local') return makeDest(o.dest).then(() => writeRootfs(store, stored, o.dest));
  if (o.type === 'tar') return writeRootfsTar(store, stored, o.dest, opts.signal);
  // Named and pushed by the build command, not written here.
  if (o.type === 'image' || o.type === 'cacheonly') return;
  const made = await compressedImage(store, stored, opts.compression ?? 'gzip');
  const image = made.image;
  trace(`export ${o.type}: ${made.compressed} layers compressed`);
  if (made.compressed) opts.reporter?.info(`compressed ${made.compressed} layers (${opts.compression ?? 'gzip'})`);
  const named = tags.length ? tags.map((name) => ({ image, name })) : [{ image }];
  // tar=false: a layout directory; for type=docker too (BuildKit's is an OCI layout as well).
  if (!o.tar) await makeDest(o.dest).then(() => layout.write(store, named, o.dest));
  else if (o.dest === STDOUT) await toStdout(await archive.stream(store, named, { format: o.type }), opts.signal);
  else await archive.write(store, named, o.dest, { format: o.type });
}

/**
 * A directory dest made, or an error naming it. Not Node's recursive mkdir, which never ends (a thread at 100%
 * CPU) on a dest under /proc: @tsbuild/sys mkdirs.
 */
async function makeDest(dir: string): Promise<void> {
  await mkdirs(dir).catch((e: Error) => {
    throw new BuildError(`--output dest=${dir}: ${e.message}`);
  });
}

/** The image's root filesystem as plain files at dir. */
async function writeRootfs(store: Store, image: Image, dir: string): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  // The snapshotter's read-only view of the image (lowerdirs top first), applied bottom first.
  const { lowerdirs } = await store.snapshotter.view(image.layers);
  await exportRootfs(lowerdirs.map((path) => ({ path })).reverse(), dir);
}

/**
 * type=tar: the tree type=local writes, as one tar. The layers are merged into a scratch tree in the
 * store's tmp/ (there is no merged view to read whiteouts away from), then streamed from it as a tar,
 * chunk by chunk: to a temp file renamed into place, or to stdout.
 */
async function writeRootfsTar(store: Store, image: Image, dest: string, signal?: AbortSignal): Promise<void> {
  const tree = await store.tempDir('export-tar');
  try {
    await writeRootfs(store, image, tree);
    const tar = tarStream(entriesFromDirectory(tree));
    if (dest === STDOUT) await toStdout(Readable.from(tar), signal);
    else
      await writeFileAtomic(dest, tar, { durable: true }).catch((e: NodeJS.ErrnoException) => {
        // The temp file beside dest could not be made: say it of dest, as the archive writer does.
        if (e.code === 'ENOENT' && e.syscall === 'open') throw new BuildError(`${dest}: no such directory`);
        throw e;
      });
  } finally {
    removeTreeBeneath(tree);
  }
}

/**
 * An archive to stdout (build -o …,dest=-; save without -o), with backpressure (Node writes a pipe or file
 * stdout synchronously), and its failure (a reader gone: EPIPE; a full disk) a failure of the command (`what`
 * names it). stdout is left open. The CLI's
 * own handler of stdout's errors (cli/main.ts: EPIPE ignored, anything else thrown, uncaught) is set
 * aside meanwhile: here the pipeline takes them; after a failure stdout is dead, and its errors are let be.
 */
export async function toStdout(src: Readable, signal?: AbortSignal, what = '--output'): Promise<void> {
  const out = process.stdout;
  const handlers = out.listeners('error') as ((e: Error) => void)[];
  out.removeAllListeners('error');
  try {
    // An interrupt stops the stream (the CLI then exits 130).
    await pipeline(src, out, { end: false, signal });
    for (const h of handlers) out.on('error', h);
  } catch (e) {
    out.on('error', () => {});
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') throw new BuildError(`${what}: stdout was closed before the whole archive was written`);
    throw new BuildError(`${what}: writing the archive to stdout: ${(e as Error).message}`);
  }
}
