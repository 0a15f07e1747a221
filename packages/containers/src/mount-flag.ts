// `run --mount type=bind|volume|tmpfs,KEY=VALUE,...`: docker's other spelling of -v, read as docker 20.10 reads
// it (its CLI's csv fields and keys, then its daemon's checks of each type), into the same mounts -v makes.
// What tsbuild cannot honour is refused by name: shared or slave propagation (a container's mounts are private
// to it), volume drivers other than local and their options or labels.
import { statSync } from 'node:fs';
import { posix } from 'node:path';
import { ContainerError } from './state.js';
import { isVolumeName } from './volumes.js';

/** A mount a -v or --mount flag asks for, before its volume exists. */
export type MountRequest =
  /** create: -v's, a source that is missing is made (with its parents) when the container starts, as docker does. */
  /** nonrecursive: --mount's bind-nonrecursive, the source without the mounts beneath it. */
  | { kind: 'bind'; source: string; target: string; readonly: boolean; create?: true; nonrecursive?: true }
  /** name undefined: a new anonymous volume. nocopy: not seeded from the image. */
  | { kind: 'volume'; name?: string; target: string; readonly: boolean; nocopy?: boolean }
  /** size in bytes, mode of its root: undefined when not given (or given as 0, as docker takes it). */
  | { kind: 'tmpfs'; target: string; readonly: boolean; size?: number; mode?: number };

/** Go's encoding/csv for one record (how docker's CLI splits --mount): "quoted" fields may hold commas. */
function csvFields(s: string): string[] {
  const out: string[] = [];
  const parseError = (i: number, what: string) => new Error(`parse error on line 1, column ${i + 1}: ${what}`);
  let i = 0;
  for (;;) {
    let field = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw parseError(i, 'extraneous or missing " in quoted-field');
        if (s[i] === '"') {
          if (s[i + 1] !== '"') break;
          i++;
        }
        field += s[i++];
      }
      i++; // the closing quote
      // Go names the column of the closing quote.
      if (i < s.length && s[i] !== ',') throw parseError(i - 1, 'extraneous or missing " in quoted-field');
    } else
      for (; i < s.length && s[i] !== ','; i++) {
        if (s[i] === '"') throw parseError(i, 'bare " in non-quoted-field');
        field += s[i];
      }
    out.push(field);
    if (i >= s.length) return out;
    i++; // the comma
  }
}

/** Go's strconv.ParseBool, as docker reads readonly=, volume-nocopy=, bind-nonrecursive=. */
function goBool(key: string, v: string): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  throw new Error(`invalid value for ${key}: ${v}`);
}

/** go-units RAMInBytes: 64m, 1.5k, 1 GiB, 1000 (bytes); units are powers of 1024. */
function ramInBytes(key: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(v);
  if (!m) throw new Error(`invalid value for ${key}: ${v}`);
  const bytes = Math.floor(Number(m[1]) * 1024 ** ' kmgtp'.indexOf((m[2] ?? ' ').toLowerCase()));
  // Beyond 2^53 - 1 the size is a float (1.1e+23): said here, not by the launcher at mount time.
  if (bytes > Number.MAX_SAFE_INTEGER) throw new Error(`invalid value for ${key}: ${v}`);
  return bytes;
}

/** strconv.ParseUint(v, 8, 32): octal digits only. */
function octal(key: string, v: string): number {
  if (!/^[0-7]+$/.test(v) || parseInt(v, 8) > 0xffffffff) throw new Error(`invalid value for ${key}: ${v}`);
  return parseInt(v, 8);
}

const propagations = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];
/** What a container's mounts are in its own mount namespace, which is private from the host's. */
const honoured = ['private', 'rprivate'];

/** Docker's CLI reading of --mount, then its daemon's checks (validateMountConfig), then tsbuild's own. */
function read(spec: string): MountRequest {
  if (spec === '') throw new Error('an empty mount specification');
  let type = 'volume'; // docker's default
  let source = '';
  let target = '';
  let readonly = false;
  let nocopy = false;
  let nonrecursive = false;
  let propagation: string | undefined;
  let size: number | undefined;
  let mode: number | undefined;
  let driver: string | undefined;
  const unsupportedVolume: string[] = [];
  const families = new Set<string>(); // bind-*, volume-* and tmpfs-* keys given
  for (const field of csvFields(spec)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const family = /^(bind|volume|tmpfs)-/.exec(key)?.[1];
    if (eq < 0) {
      // A few keys alone mean true.
      if (key === 'readonly' || key === 'ro') readonly = true;
      else if (key === 'volume-nocopy') nocopy = true;
      else if (key === 'bind-nonrecursive') nonrecursive = true;
      else throw new Error(`invalid field '${field}' must be a key=value pair`);
      if (family) families.add(family);
      continue;
    }
    const value = field.slice(eq + 1);
    switch (key) {
      case 'type':
        type = value.toLowerCase();
        break;
      case 'source':
      case 'src':
        source = value;
        break;
      case 'target':
      case 'destination':
      case 'dst':
        target = value;
        break;
      case 'readonly':
      case 'ro':
        readonly = goBool(key, value);
        break;
      case 'consistency': // for Docker Desktop's shared folders; taken and ignored on Linux, as docker does
        break;
      case 'bind-propagation':
        propagation = value.toLowerCase();
        break;
      case 'bind-nonrecursive':
        nonrecursive = goBool(key, value);
        break;
      case 'volume-nocopy':
        nocopy = goBool(key, value);
        break;
      case 'volume-driver':
        driver = value;
        break;
      case 'volume-opt':
      case 'volume-label':
        unsupportedVolume.push(key);
        break;
      case 'tmpfs-size':
        size = ramInBytes(key, value);
        break;
      case 'tmpfs-mode':
        mode = octal(key, value);
        break;
      default:
        throw new Error(`unexpected key '${key}' in '${field}'`);
    }
    if (family) families.add(family);
  }
  if (type === '') throw new Error('type is required');
  if (target === '') throw new Error('target is required');
  for (const f of families) if (f !== type) throw new Error(`cannot mix '${f}-*' options with mount type '${type}'`);

  // The daemon's checks, in its order and words.
  const invalid = (why: string) => new Error(`invalid mount config for type "${type}": ${why}`);
  const absolute = (p: string) => {
    if (!p.startsWith('/')) throw invalid(`invalid mount path: '${p}' mount path must be absolute`);
  };
  if (posix.normalize(target) === '/') throw invalid("invalid specification: destination can't be '/'");
  absolute(target);
  target = posix.resolve(target);
  if (type === 'bind') {
    if (source === '') throw invalid('field Source must not be empty');
    if (propagation !== undefined && !propagations.includes(propagation))
      throw invalid(`invalid propagation mode: ${propagation}`);
    absolute(source);
    try {
      statSync(source);
    } catch {
      throw invalid(`bind source path does not exist: ${source}`);
    }
    if (propagation !== undefined && !honoured.includes(propagation))
      throw new Error(
        `bind-propagation=${propagation} is not supported: a container's mounts are private to it ` +
          `(${honoured.join(', ')})`,
      );
    return {
      kind: 'bind',
      source: posix.resolve(source),
      target,
      readonly,
      ...(nonrecursive ? { nonrecursive: true } : {}),
    };
  }
  if (type === 'volume') {
    if (source === '' && readonly) throw invalid('must not set ReadOnly mode when using anonymous volumes');
    if (source !== '' && !isVolumeName(source))
      throw new Error(
        `"${source}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are ` +
          `allowed${source.startsWith('/') ? ' (a host directory is type=bind)' : ''}`,
      );
    if (driver !== undefined && driver !== 'local')
      throw new Error(`volume-driver=${driver} is not supported: volumes are directories in tsbuild's store (local)`);
    if (unsupportedVolume.length)
      throw new Error(`${unsupportedVolume[0]} is not supported: volumes are plain directories in tsbuild's store`);
    return { kind: 'volume', ...(source ? { name: source } : {}), target, readonly, ...(nocopy ? { nocopy } : {}) };
  }
  if (type === 'tmpfs') {
    if (source !== '') throw invalid('field Source must not be specified');
    return { kind: 'tmpfs', target, readonly, ...(size ? { size } : {}), ...(mode ? { mode } : {}) };
  }
  throw invalid('mount type unknown');
}

/** One --mount flag's value; errors name the flag and the spec. */
export function parseMount(spec: string): MountRequest {
  try {
    return read(spec);
  } catch (e) {
    throw new ContainerError(`--mount ${spec || '""'}: ${(e as Error).message}`);
  }
}
