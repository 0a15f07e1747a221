// Build outputs (-o): an OCI layout, an OCI or docker archive, or the root filesystem as files.
import { resolve } from 'node:path';
import { archive, compressedImage, layout, type Compression, type Image, type Store } from '@tsbuild/layerstore';
import { exportRootfs } from '@tsbuild/layerstore/layer';
import type { Reporter } from '../progress/index.js';
import { trace } from '../trace.js';
import { BuildError, UsageError } from '../errors.js';
import { mkdirs } from '@tsbuild/sys';
import { parseCsv } from '../options.js';

export interface Output {
  type: 'oci' | 'oci-archive' | 'docker' | 'local' | 'tar';
  /** '' only for type=docker: load into the Docker daemon (--load). */
  dest: string;
}

export function parseOutput(spec: string): Output {
  // buildx's `-o -` and `dest=-` write to stdout; tsbuild writes no image there, and taken as a path, "-" was a
  // file or directory of that name in the working directory (a surprise, with nothing on stdout).
  const stdout = () =>
    new UsageError(`--output ${spec}: tsbuild does not write an image to stdout; give dest= a file or directory`);
  // `-o DIR` alone means type=local, as in buildx.
  if (!spec.includes('=')) {
    if (spec === '-') throw stdout();
    return { type: 'local', dest: resolve(spec) };
  }
  const kv = parseCsv(spec, '--output');
  const type = kv.get('type');
  const dest = kv.get('dest');
  if (dest === '-') throw stdout();
  if (!type) throw new UsageError(`--output ${spec}: type= is required (oci, oci-archive, docker, local)`);
  if (!['oci', 'oci-archive', 'docker', 'local'].includes(type))
    throw new UsageError(`--output ${spec}: unknown type "${type}" (oci, oci-archive, docker, local)`);
  // type=docker without dest= is buildx's --load: the image goes to the Docker daemon (build.ts).
  if (!dest && type !== 'docker') throw new UsageError(`--output ${spec}: dest= is required`);
  for (const k of kv.keys())
    if (!['type', 'dest', 'name', 'tar'].includes(k)) throw new UsageError(`--output ${spec}: unknown key "${k}"`);
  // buildx's type=oci,tar=false writes a directory; tsbuild's type=oci is a directory already.
  return { type: type as Output['type'], dest: dest ? resolve(dest) : '' };
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
  opts: { compression?: Compression; reporter?: Reporter } = {},
): Promise<void> {
  let image = stored;
  if (o.type !== 'local') {
    const made = await compressedImage(store, stored, opts.compression ?? 'gzip');
    image = made.image;
    trace(`export ${o.type}: ${made.compressed} layers compressed`);
    if (made.compressed) opts.reporter?.info(`compressed ${made.compressed} layers (${opts.compression ?? 'gzip'})`);
  }
  const named = tags.length ? tags.map((name) => ({ image, name })) : [{ image }];
  switch (o.type) {
    case 'oci':
      await mkdirs(o.dest).catch((e: Error) => {
        throw new BuildError(`--output type=oci,dest=${o.dest}: ${e.message}`);
      });
      await layout.write(store, named, o.dest);
      return;
    case 'oci-archive':
      await archive.write(store, named, o.dest, { format: 'oci' });
      return;
    case 'docker':
      await archive.write(store, named, o.dest, { format: 'docker' });
      return;
    case 'local': {
      // Not Node's recursive mkdir: it never ends on a dest such as /proc/x (@tsbuild/sys mkdirs).
      await mkdirs(o.dest).catch((e: Error) => {
        throw new BuildError(`--output type=local,dest=${o.dest}: ${e.message}`);
      });
      // The snapshotter's read-only view of the image (lowerdirs top first), applied bottom first.
      const { lowerdirs } = await store.snapshotter.view(image.layers);
      await exportRootfs(lowerdirs.map((path) => ({ path })).reverse(), o.dest);
      return;
    }
    default:
      throw new UsageError(`--output type=${o.type} is not supported`);
  }
}
