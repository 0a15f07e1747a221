// One validator for every adapter's output (go-containerregistry's validate.Image): the store, an OCI
// layout, an archive read back, a pulled image, a build's image. It checks what a consumer will check, and
// a bit more. `layers: 'stat'` checks the layers by their descriptors and sizes only, for blobs that were
// verified on their way into the store (a pull, a build): that keeps a no-op build from re-reading them.
import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Writable, type Readable } from 'node:stream';
import { MediaType, StoreError, type Digest, type Image } from './types.js';
import { isDigest } from './fsutil.js';
import { layerCompression } from './image-read.js';

export interface ValidateSource {
  read(digest: Digest): Promise<Buffer>;
  open(digest: Digest): Readable;
  /** Size of a blob, undefined when absent (needed by `layers: 'stat'`). */
  size?(digest: Digest): Promise<number | undefined>;
}

export interface ValidateOptions {
  /** Check that gzip/tar layers hash to their diff_ids (default true; only with `layers: 'read'`). */
  checkDiffIDs?: boolean;
  /** 'read' (default): read every layer and hash it; 'stat': the blob is there with the right size. */
  layers?: 'read' | 'stat';
}

const ociLayers = new Set<string>([
  MediaType.OciLayer,
  MediaType.OciLayerGzip,
  MediaType.OciLayerZstd,
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
]);
const dockerLayers = new Set<string>([
  MediaType.DockerLayerGzip,
  'application/vnd.docker.image.rootfs.diff.tar',
  MediaType.OciLayerZstd,
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

/** Every problem found (empty when the image is valid). */
export async function validateProblems(
  image: Image,
  src: ValidateSource,
  opts: ValidateOptions = {},
): Promise<string[]> {
  const problems: string[] = [];
  const p = (s: string) => problems.push(s);
  const hashOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

  // Manifest.
  let rawManifest: Buffer;
  try {
    rawManifest = await src.read(image.manifestDigest);
  } catch (e) {
    return [`manifest ${image.manifestDigest}: ${(e as Error).message}`];
  }
  if (hashOf(rawManifest) !== image.manifestDigest) p(`manifest bytes do not hash to ${image.manifestDigest}`);
  const m = JSON.parse(rawManifest.toString('utf8'));
  if (m.schemaVersion !== 2) p(`manifest schemaVersion is ${m.schemaVersion}, not 2`);
  const docker = m.mediaType === MediaType.DockerManifest;
  if (!docker && m.mediaType !== undefined && m.mediaType !== MediaType.OciManifest)
    p(`unknown manifest mediaType ${m.mediaType}`);
  const wantConfigType = docker ? MediaType.DockerConfig : MediaType.OciConfig;
  if (m.config?.mediaType !== wantConfigType)
    p(`config mediaType ${m.config?.mediaType} in a ${docker ? 'docker' : 'oci'} manifest (want ${wantConfigType})`);
  if (!isDigest(m.config?.digest)) return [...problems, `config digest ${m.config?.digest} is malformed`];
  if (m.config.digest !== image.configDigest)
    p(`image.configDigest ${image.configDigest} != manifest config ${m.config.digest}`);

  // Config.
  let rawConfig: Buffer | undefined;
  try {
    rawConfig = await src.read(m.config.digest);
  } catch (e) {
    p(`config ${m.config.digest}: ${(e as Error).message}`);
  }
  let diffIDs: Digest[] = [];
  if (rawConfig) {
    if (hashOf(rawConfig) !== m.config.digest) p(`config bytes do not hash to ${m.config.digest}`);
    if (rawConfig.length !== m.config.size) p(`config size ${rawConfig.length} != descriptor size ${m.config.size}`);
    const c = JSON.parse(rawConfig.toString('utf8'));
    if (!c.architecture || !c.os) p('config lacks architecture/os');
    if (c.rootfs?.type !== 'layers') p(`config rootfs.type is ${c.rootfs?.type}`);
    diffIDs = Array.isArray(c.rootfs?.diff_ids) ? c.rootfs.diff_ids : [];
    if (diffIDs.length !== m.layers?.length)
      p(`config has ${diffIDs.length} diff_ids, manifest has ${m.layers?.length} layers`);
    if (Array.isArray(c.history)) {
      const nonEmpty = c.history.filter((h: { empty_layer?: boolean }) => !h.empty_layer).length;
      if (c.history.length > 0 && nonEmpty !== diffIDs.length)
        p(`history has ${nonEmpty} non-empty entries for ${diffIDs.length} layers`);
    }
  }

  // Layers.
  const allowed = docker ? dockerLayers : ociLayers;
  for (const [i, l] of (m.layers ?? []).entries()) {
    if (!allowed.has(l.mediaType))
      p(`layer ${i} mediaType ${l.mediaType} is not valid in a ${docker ? 'docker' : 'oci'} manifest`);
    if (!isDigest(l.digest)) {
      p(`layer ${i} digest ${l.digest} is malformed`);
      continue;
    }
    if (image.layers[i] && image.layers[i].diffID !== diffIDs[i]) p(`image.layers[${i}].diffID != config diff_id`);
    if (opts.layers === 'stat') {
      if (!src.size) throw new TypeError("validate: layers: 'stat' needs a source with size()");
      const size = await src.size(l.digest);
      if (size === undefined) p(`layer ${i} ${l.digest} is missing`);
      else if (size !== l.size) p(`layer ${i} is ${size} bytes, descriptor says ${l.size}`);
      continue;
    }
    const hash = createHash('sha256');
    const diff = createHash('sha256');
    let size = 0;
    const compression = layerCompression(l.mediaType);
    const wantDiff = opts.checkDiffIDs !== false && compression !== 'zstd' ? diffIDs[i] : undefined;
    try {
      const rs = src.open(l.digest);
      const counter = new Writable({
        write(c: Buffer, _e, cb) {
          size += c.length;
          hash.update(c);
          cb();
        },
      });
      if (wantDiff && compression === 'gzip') {
        const gunzip = createGunzip();
        gunzip.on('data', (c: Buffer) => diff.update(c));
        rs.on('data', (c: Buffer) => gunzip.write(c));
        // Settles to an error value rather than rejecting, so that it is never an unhandled rejection.
        const gzDone = new Promise<Error | undefined>((res) => {
          gunzip.on('end', () => res(undefined));
          gunzip.on('error', res);
        });
        await pipeline(rs, counter);
        gunzip.end();
        const gzErr = await gzDone;
        if (gzErr) p(`layer ${i}: cannot gunzip: ${gzErr.message}`);
        else if (`sha256:${diff.digest('hex')}` !== wantDiff)
          p(`layer ${i}: uncompressed content does not hash to diff_id ${wantDiff}`);
      } else {
        await pipeline(rs, counter);
        const d = `sha256:${hash.copy().digest('hex')}`;
        if (wantDiff && compression === 'tar' && d !== wantDiff)
          p(`layer ${i}: uncompressed layer digest ${d} != diff_id ${wantDiff}`);
      }
    } catch (e) {
      p(`layer ${i} ${l.digest}: ${(e as Error).message}`);
      continue;
    }
    if (`sha256:${hash.digest('hex')}` !== l.digest) p(`layer ${i} does not hash to ${l.digest}`);
    if (size !== l.size) p(`layer ${i} is ${size} bytes, descriptor says ${l.size}`);
  }
  return problems;
}

/** Throw StoreError('invalid') listing every problem, or return quietly. */
export async function validate(image: Image, src: ValidateSource, opts?: ValidateOptions): Promise<void> {
  const problems = await validateProblems(image, src, opts);
  if (problems.length)
    throw new StoreError(
      'invalid',
      `image ${image.manifestDigest} is invalid:\n  ${problems.join('\n  ')}`,
      image.manifestDigest,
    );
}
