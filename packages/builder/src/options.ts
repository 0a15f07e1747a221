// Option values as docker and buildx spell them (`key=value,...` lists, sizes): read by the CLI's
// flags and by the build and export code that takes the same values, so they live below both.
import { parseReference, remote } from '@tsbuild/layerstore';
import { csvRecord } from '@tsbuild/parser';
import { UsageError } from './errors.js';

/**
 * Parses `key=value,key2=value2` as buildx does (--output, --secret): one record of Go's encoding/csv, so a
 * field in double quotes may hold commas (`"name=a:1,b:1"`); keys trimmed.
 */
export function parseCsv(value: string, flag: string): Map<string, string> {
  const out = new Map<string, string>();
  const fields = csvRecord(
    value,
    (p) => new UsageError(`${flag}: parse error on line 1, column ${p.column}: ${p.what}`),
  );
  for (const part of fields) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag}: "${part}" is not key=value`);
    out.set(part.slice(0, eq).trim(), part.slice(eq + 1));
  }
  return out;
}

/** Sizes as docker takes them: 32m, 1g, 512k, plain bytes. */
export function parseSize(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$/i.exec(value.trim());
  if (!m) throw new UsageError(`${flag}: invalid size "${value}" (use e.g. 32m, 1g)`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'];
  return Math.floor(Number(m[1]) * mult);
}

/**
 * --compression gzip|zstd|none: how the layers a build stored uncompressed are compressed when the
 * image leaves the store (push, --output, save, --cache-to). Default gzip.
 */
export function parseCompression(value: string | undefined): 'gzip' | 'zstd' | 'none' {
  const c = value ?? 'gzip';
  if (c !== 'gzip' && c !== 'zstd' && c !== 'none')
    throw new UsageError(`--compression: "${c}" is not one of gzip, zstd, none`);
  return c;
}

/**
 * A compression level (BuildKit's compression-level=, tsbuild's --compression-level) for compression `c`: an
 * integer as Go's strconv.ParseInt reads one, in the range BuildKit documents (gzip 0-9, zstd 0-22; zstd's 0 is
 * its default level). Uncompressed takes any level and ignores it, as BuildKit does.
 */
export function parseCompressionLevel(value: string, c: 'gzip' | 'zstd' | 'none', what: string): number {
  if (!/^[+-]?\d+$/.test(value)) throw new UsageError(`${what}: "${value}" is not an integer`);
  const level = Number(value);
  const max = c === 'gzip' ? 9 : c === 'zstd' ? 22 : Infinity;
  if (c !== 'none' && (level < 0 || level > max))
    throw new UsageError(`${what}: ${value} is out of range for ${c} (0-${max})`);
  return level;
}

/**
 * --insecure-registry values checked as dockerd checks them (host[:port] or a CIDR; http:// or
 * https:// in front dropped with a warning on stderr, as dockerd logs one): a bad value is a usage
 * error naming the flag and the value.
 */
export function parseInsecureRegistries(values: string[]): string[] {
  return values.map((value) => {
    try {
      const { entry, warning } = remote.checkInsecureRegistry(value);
      if (warning) process.stderr.write(`WARNING: --insecure-registry "${value}": ${warning}\n`);
      return entry;
    } catch (e) {
      throw new UsageError(`--insecure-registry "${value}": ${(e as Error).message}`);
    }
  });
}

/** A docker-format archive is for `docker load`, which (docker 20.10, Debian 12's) cannot read zstd layers. */
export function checkDockerArchiveCompression(c: 'gzip' | 'zstd' | 'none', what: string): void {
  if (c === 'zstd')
    throw new UsageError(
      `--compression zstd: ${what} is a docker archive, and docker load (20.10) cannot read zstd layers; ` +
        'use gzip or none, or an OCI archive',
    );
}

/**
 * Go's strconv.ParseBool, as docker's flags (commit -p=False, --quiet=T) and buildx's `-o tar=` read a boolean:
 * undefined for a spelling it does not take.
 */
export function goBool(v: string): boolean | undefined {
  return goBools.get(v);
}

const goBools = new Map<string, boolean>([
  ...['1', 't', 'T', 'TRUE', 'true', 'True'].map((v): [string, boolean] => [v, true]),
  ...['0', 'f', 'F', 'FALSE', 'false', 'False'].map((v): [string, boolean] => [v, false]),
]);

/**
 * A name to tag an image with (tag TARGET, build -t) with a digest in it (name@sha256:…,
 * name:tag@sha256:…) is refused, as docker refuses it: the tag would claim a digest the image (a local
 * manifest) need not have. `what` names the argument in the error. A name that does not parse is left
 * to the caller's own parse error.
 */
export function refuseDigestTag(ref: string, what: string): void {
  let digest: string | undefined;
  try {
    digest = parseReference(ref).digest;
  } catch {
    return;
  }
  if (digest) throw new UsageError(`${what}: refusing to create a tag with a digest reference`);
}
