// A small, strict flag parser shaped like docker's: `-t x`, `--tag x`, `--tag=x`, `-tx`,
// repeatable flags, booleans, `--` ends flags. Anything unknown is a usage error naming the flag.
import { UsageError } from '../errors.js';
import { goBool } from '../options.js';

export interface FlagSpec {
  /** Long name without dashes. */
  name: string;
  short?: string;
  /**
   * 'bool' takes no value; 'string' takes one; 'list' is repeatable; 'optional' takes a value only
   * as `--flag=VALUE` and is `implied` when given alone (`--explain`, `--explain=json`).
   */
  kind: 'bool' | 'string' | 'list' | 'optional';
  /** The value of an 'optional' flag given without one. */
  implied?: string;
  /** Extra long spellings accepted for compatibility (e.g. `progress` also as `progress=`). */
  aliases?: string[];
  /** What the flag does, one line of `tsbuild COMMAND --help` (cli/help.ts renders it). */
  help: string;
  /** The value's placeholder in the help, e.g. `NAME[:TAG]` (flags that take a value). */
  value?: string;
  /**
   * A flag docker/buildx accepts that tsbuild does not implement: using it fails with exit 2 and a
   * message that names it and says why, instead of "unknown flag" (a pipeline then knows what to drop).
   */
  unsupported?: boolean;
}

export interface Parsed {
  flags: Map<string, string | boolean | string[]>;
  positionals: string[];
}

/**
 * Parses argv against the specs. `stopAtFirstPositional` makes everything after the first
 * positional a positional (as `docker run IMAGE CMD...` does).
 */
export function parseArgs(argv: string[], specs: FlagSpec[], opts: { stopAtFirstPositional?: boolean } = {}): Parsed {
  const byLong = new Map<string, FlagSpec>();
  const byShort = new Map<string, FlagSpec>();
  for (const s of specs) {
    byLong.set(s.name, s);
    for (const a of s.aliases ?? []) byLong.set(a, s);
    if (s.short) byShort.set(s.short, s);
  }
  const flags = new Map<string, string | boolean | string[]>();
  const positionals: string[] = [];
  const set = (spec: FlagSpec, value: string | boolean, shown: string) => {
    if (spec.kind === 'list') {
      const list = (flags.get(spec.name) as string[] | undefined) ?? [];
      list.push(String(value));
      flags.set(spec.name, list);
    } else if (spec.kind === 'bool') {
      const b = typeof value === 'string' ? goBool(value) : value;
      if (b === undefined) throw new UsageError(`flag ${shown} takes true or false, not "${value}"`);
      flags.set(spec.name, b);
    } else {
      flags.set(spec.name, String(value));
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--') && arg.length > 2) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`unknown flag: --${name}`);
      if (spec.unsupported) throw unsupportedError(`--${name}`, spec);
      if (eq >= 0) set(spec, arg.slice(eq + 1), `--${name}`);
      else if (spec.kind === 'bool') set(spec, true, `--${name}`);
      else if (spec.kind === 'optional') set(spec, spec.implied ?? '', `--${name}`);
      else {
        if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: --${name}`);
        set(spec, argv[++i], `--${name}`);
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // Short flags may be bundled (-it) and a value may be attached (-tapp:1).
      for (let j = 1; j < arg.length; j++) {
        const c = arg[j];
        const spec = byShort.get(c);
        if (!spec) throw new UsageError(`unknown shorthand flag: '${c}' in ${arg}`);
        if (spec.unsupported) throw unsupportedError(`-${c} (--${spec.name})`, spec);
        if (spec.kind === 'bool') {
          // -p=false, as docker's flag parser takes it: the rest of the argument is the value.
          if (arg[j + 1] === '=') {
            set(spec, arg.slice(j + 2), `-${c}`);
            break;
          }
          set(spec, true, `-${c}`);
          continue;
        }
        let value = arg.slice(j + 1);
        if (value.startsWith('=')) value = value.slice(1);
        if (value === '') {
          if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: '${c}' in -${c}`);
          value = argv[++i]!;
        }
        set(spec, value, `-${c}`);
        break;
      }
      continue;
    }
    positionals.push(arg);
    if (opts.stopAtFirstPositional) {
      positionals.push(...argv.slice(i + 1));
      break;
    }
  }
  return { flags, positionals };
}

function unsupportedError(shown: string, spec: FlagSpec): UsageError {
  return new UsageError(`${shown}: not supported by tsbuild (${spec.help})`);
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}
export function bool(p: Parsed, name: string): boolean {
  return p.flags.get(name) === true;
}
export function list(p: Parsed, name: string): string[] {
  const v = p.flags.get(name);
  return Array.isArray(v) ? v : [];
}

/**
 * `--build-arg K=V` values; `--build-arg K` takes K from the environment, and an unset K is
 * left out, as docker does.
 */
export function buildArgs(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of values) {
    const eq = a.indexOf('=');
    if (eq === 0) throw new UsageError(`--build-arg "${a}": missing name`);
    if (eq < 0) {
      if (process.env[a] !== undefined) out[a] = process.env[a]!;
    } else out[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return out;
}

/** All of standard input as text (`-f -`). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
