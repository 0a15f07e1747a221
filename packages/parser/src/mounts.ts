import { clean, resolve } from './posix.js';
import type { RunMount } from './types.js';
import { csvRecord } from './csv.js';

/** `--mount` value errors; the caller adds the location. */
export class MountError extends Error {
  /**
   * `key`: the `key=` field at fault, when there is one (for the error location). `stageLevel`: BuildKit
   * (dockerd 20.10) finds it only while building the stage, not when it parses the Dockerfile.
   */
  constructor(
    message: string,
    readonly key?: string,
    readonly stageLevel = false,
  ) {
    super(message);
  }
}

/** A RUN --mount value's fields, with BuildKit's words for a malformed one. */
function csvFields(s: string): string[] {
  return csvRecord(s, (p) => new MountError(`failed to parse csv mounts: ${p.what}`));
}

/** A mount before stage lookup: `from` is still the name as written. */
export type ParsedMount = RunMount & { fromName?: string };

const types = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const sharings = ['shared', 'private', 'locked'];

function parseBool(key: string, v: string): boolean {
  // strconv.ParseBool
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  throw new MountError(`invalid value for ${key}: ${v}`, key);
}

function parseUint(key: string, v: string, base: 8 | 10): number {
  const re = base === 8 ? /^[0-7]+$/ : /^\d+$/;
  const n = re.test(v) ? Number.parseInt(v, base) : NaN;
  if (!Number.isFinite(n) || n > 0xffffffff) throw new MountError(`invalid value ${v} for ${key}`, key);
  return n;
}

// RAM sizes as docker's units.RAMInBytes: "64m", "1g", "512k", "1024", "1.5GB".
function ramInBytes(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(v);
  if (!m) throw new MountError(`invalid value for size: ${v}`, 'size');
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[m[2].toLowerCase() as 'k'];
  return Math.floor(Number(m[1]) * mult);
}

/**
 * One `--mount=...` value, with BuildKit's defaults (bind read-only, cache
 * shared 0755, secret at /run/secrets/<id> 0400, ssh id "default" 0600) and
 * checks. `expand` expands each value; `workdir` resolves relative targets.
 */
export function parseMount(
  value: string,
  expand: (w: string) => string,
  workdir: string,
  sshIndex: number,
  workdirKnown = true,
): ParsedMount {
  let type = 'bind';
  let from: string | undefined, source: string | undefined, target: string | undefined, id: string | undefined;
  let sharing: string | undefined, env: string | undefined;
  let mode: number | undefined, uid: number | undefined, gid: number | undefined, size: number | undefined;
  let readonly: boolean | undefined,
    required = false;
  const written = new Map<string, string>(); // canonical key -> key as written (src, dst, ...), for error locations

  for (const field of csvFields(value)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      switch (key) {
        case 'readonly':
        case 'ro':
          readonly = true;
          continue;
        case 'readwrite':
        case 'rw':
          readonly = false;
          continue;
        case 'required':
          if (type === 'secret' || type === 'ssh') {
            required = true;
            continue;
          }
          throw new MountError(`unexpected key '${key}' for mount type '${type}'`, key);
        default:
          throw new MountError(`invalid field '${field}' must be a key=value pair`, key);
      }
    }
    written.set(key, key);
    const v = expand(field.slice(eq + 1));
    switch (key) {
      case 'type':
        if (!types.includes(v.toLowerCase()))
          throw new MountError(`unsupported mount type "${v}" (use one of ${types.join(', ')})`, key);
        type = v.toLowerCase();
        break;
      case 'from':
        from = v;
        break;
      case 'source':
      case 'src':
        source = v;
        written.set('source', key);
        break;
      case 'target':
      case 'dst':
      case 'destination':
        target = v;
        written.set('target', key);
        break;
      case 'readonly':
      case 'ro':
        readonly = parseBool(key, v);
        break;
      case 'readwrite':
      case 'rw':
        readonly = !parseBool(key, v);
        break;
      case 'required':
        if (type !== 'secret' && type !== 'ssh')
          throw new MountError(`unexpected key '${key}' for mount type '${type}'`, key);
        required = parseBool(key, v);
        break;
      case 'size':
        if (type !== 'tmpfs') throw new MountError(`unexpected key '${key}' for mount type '${type}'`, key);
        size = ramInBytes(v);
        break;
      case 'id':
        id = v;
        break;
      case 'sharing':
        if (type !== 'cache') throw new MountError(`invalid cache sharing set for ${type} mount`, key);
        sharing = v.toLowerCase();
        break;
      case 'mode':
        mode = parseUint('mode', v, 8);
        break;
      case 'uid':
        uid = parseUint('uid', v, 10);
        break;
      case 'gid':
        gid = parseUint('gid', v, 10);
        break;
      case 'env':
        env = v;
        break;
      default:
        throw new MountError(`unexpected key '${key}' in '${field}'`, key);
    }
  }

  if (!['secret', 'ssh', 'cache'].includes(type)) {
    for (const [k, v] of [
      ['mode', mode],
      ['uid', uid],
      ['gid', gid],
    ] as const) {
      if (v !== undefined) throw new MountError(`${k} not allowed for "${type}" type mounts`, k);
    }
  }
  if (sharing !== undefined && !sharings.includes(sharing))
    throw new MountError(`unsupported sharing value "${sharing}"`, 'sharing');
  // BuildKit (dockerfile2llb's dispatchRunMounts): a relative or missing target is joined to the step's working
  // directory; only a resolved target of "/" is refused.
  // A relative target against a working directory that is not known yet (a base image's, when planning without
  // it) is judged when the build knows it.
  const abs = (t: string) => {
    const r = resolve(workdir, t);
    if (r === '/' && (workdirKnown || t.startsWith('/'))) {
      throw new MountError(`invalid mount target "${r}"`, written.get('target'), true);
    }
    return r;
  };
  const needTarget = () => abs(target ?? '');
  const fromName = from !== undefined ? { fromName: from } : {};

  switch (type) {
    case 'bind':
      return { type: 'bind', target: needTarget(), source: source ?? '', readwrite: readonly === false, ...fromName };
    case 'cache': {
      const t = needTarget();
      return {
        // The default id is the target as written, cleaned (BuildKit: path.Clean(mount.Target)), not resolved.
        type: 'cache',
        target: t,
        id: id || clean(target ?? ''),
        sharing: (sharing ?? 'shared') as 'shared',
        source: source ?? '',
        readonly: readonly === true,
        mode: mode ?? 0o755,
        uid: uid ?? 0,
        gid: gid ?? 0,
        ...fromName,
      };
    }
    case 'tmpfs': {
      const m: RunMount = { type: 'tmpfs', target: needTarget() };
      if (size !== undefined) m.size = size;
      return m;
    }
    case 'secret': {
      if (from !== undefined) throw new MountError('secret mount should not have a from', 'from');
      if (source === undefined && target === undefined && id === undefined && env === undefined) {
        throw new MountError('invalid secret mount: one of id, source, target is required');
      }
      if (source !== undefined && id !== undefined)
        throw new MountError("both source and id can't be set", written.get('source'));
      const sid = id ?? source ?? (target ? target.slice(target.lastIndexOf('/') + 1) : (env ?? ''));
      const m: RunMount = {
        type: 'secret',
        id: sid,
        required,
        mode: mode ?? 0o400,
        uid: uid ?? 0,
        gid: gid ?? 0,
        target: target ? abs(target) : env !== undefined ? '' : `/run/secrets/${sid}`,
      };
      if (env !== undefined) m.env = env;
      return m;
    }
    default: {
      if (from !== undefined) throw new MountError('ssh mount should not have a from', 'from', true);
      return {
        type: 'ssh',
        id: id || 'default',
        required,
        mode: mode ?? 0o600,
        uid: uid ?? 0,
        gid: gid ?? 0,
        target: target ? abs(target) : `/run/buildkit/ssh_agent.${sshIndex}`,
      };
    }
  }
}

/** The raw `from=` of a mount, without expansion, for the dependency scan. */
export function mountFrom(value: string): string | undefined {
  try {
    for (const field of csvFields(value)) {
      const eq = field.indexOf('=');
      if (eq > 0 && field.slice(0, eq).toLowerCase() === 'from') return field.slice(eq + 1);
    }
  } catch {
    return undefined;
  }
  return undefined;
}
