// How each metadata instruction changes the image config, exactly as Docker/BuildKit do.
import type { Step } from '@tsbuild/parser';
import { DEFAULT_PATH, setEnv, type ContainerConfig, type History, type ImageConfig } from '@tsbuild/layerstore';

// The env rules a container applies too live with the image config types (layerstore).
export { setEnv };
export const DefaultPath = DEFAULT_PATH;

export interface StageConfig {
  image: ImageConfig;
  /** CMD set in this stage: ENTRYPOINT clears an inherited CMD only. */
  cmdSet: boolean;
}

export function scratchConfig(platform: { os: string; architecture: string; variant?: string }): ImageConfig {
  return {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    // BuildKit's empty image: a default PATH and WorkingDir "/" (dockerfile2llb's emptyImage), and OnBuild
    // null: dockerd 20.10's BuildKit writes the key (no omitempty), null when there are no triggers.
    config: { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: '/', OnBuild: null },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
}

/** The config a stage starts from: the base's, with its ONBUILD triggers consumed. */
export function inheritConfig(base: ImageConfig): ImageConfig {
  const copy = structuredClone(base);
  copy.config = { ...(copy.config ?? {}) };
  copy.config.OnBuild = null;
  copy.history = copy.history ?? [];
  return copy;
}

/**
 * The config a step starts from, to change without touching the one before it (a stage's state may be
 * another stage's FROM). Shallow: applyStep replaces what it changes (Env, Labels, ExposedPorts, Volumes,
 * OnBuild) rather than writing into it, and history entries are never changed once pushed; a deep copy
 * per step copied every history entry and Env line again at each step, O(steps²) (200 steps: ~35 ms of
 * copying and collection in a no-op build).
 */
export function stepConfig(image: ImageConfig): ImageConfig & { history: History[] } {
  return {
    ...image,
    ...(image.config && { config: { ...image.config } }),
    history: [...(image.history ?? [])],
  };
}

/** Applies a step's effect on the config. Filesystem steps change nothing here but WorkingDir. */
export function applyStep(state: StageConfig, step: Step): void {
  const c: ContainerConfig = (state.image.config ??= {});
  switch (step.kind) {
    case 'env':
      for (const [k, v] of step.pairs) c.Env = setEnv(c.Env, k, v);
      break;
    case 'label':
      c.Labels = { ...(c.Labels ?? {}) };
      for (const [k, v] of step.pairs) c.Labels[k] = v;
      break;
    case 'expose':
      c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
      for (const p of step.ports) for (const port of expandPorts(p)) c.ExposedPorts[port] = {};
      break;
    case 'volume':
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const v of step.paths) c.Volumes[v] = {};
      break;
    case 'user':
      c.User = step.user;
      break;
    case 'workdir':
      c.WorkingDir = step.path;
      break;
    // BuildKit's config fields are omitempty: `ENTRYPOINT []` / `CMD []` and the CMD an ENTRYPOINT clears
    // leave no field at all, not an empty list or null.
    case 'entrypoint':
      if (step.argv.length > 0) c.Entrypoint = step.argv;
      else delete c.Entrypoint;
      if (!state.cmdSet) delete c.Cmd;
      break;
    case 'cmd':
      if (step.argv.length > 0) c.Cmd = step.argv;
      else delete c.Cmd;
      // As BuildKit, with every CMD (a Windows flag: docker on Linux ignores it, but the config has it).
      c.ArgsEscaped = true;
      state.cmdSet = true;
      break;
    case 'shell':
      c.Shell = step.argv;
      break;
    case 'healthcheck': {
      const hc: NonNullable<ContainerConfig['Healthcheck']> = { Test: step.test };
      if (step.interval !== undefined) hc.Interval = step.interval;
      if (step.timeout !== undefined) hc.Timeout = step.timeout;
      if (step.startPeriod !== undefined) hc.StartPeriod = step.startPeriod;
      if (step.startInterval !== undefined) hc.StartInterval = step.startInterval;
      if (step.retries !== undefined) hc.Retries = step.retries;
      c.Healthcheck = hc;
      break;
    }
    case 'stopsignal':
      c.StopSignal = step.signal;
      break;
    case 'onbuild':
      c.OnBuild = [...(c.OnBuild ?? []), step.trigger];
      break;
    case 'maintainer':
      state.image.author = step.name;
      break;
    default:
      break;
  }
}

/**
 * The ports an EXPOSE word adds, as BuildKit records them (go-connections' ParsePortSpecs): "80", "80/udp",
 * "8000-8002/tcp" → ["80/tcp"], ...; of `[[IP:]HOSTPORT:]PORT[/PROTO]` the container's PORT only, its number
 * in decimal ("0100" → "100"), the protocol lower case, tcp when empty ("80/").
 */
export function expandPorts(spec: string): string[] {
  const last = spec.slice(spec.lastIndexOf(':') + 1);
  const slash = last.indexOf('/');
  const range = slash < 0 ? last : last.slice(0, slash);
  const proto = (slash < 0 ? '' : last.slice(slash + 1)).toLowerCase() || 'tcp';
  const m = /^(\d+)(?:-(\d+))?$/.exec(range);
  if (!m) return [`${range}/${proto}`];
  const lo = Number(m[1]);
  const hi = m[2] ? Number(m[2]) : lo;
  const out: string[] = [];
  for (let p = lo; p <= hi && out.length < 65536; p++) out.push(`${p}/${proto}`);
  return out;
}

const goEscapes: Record<string, string> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
  '"': '\\"',
  '\\': '\\\\',
};

/** Go's strconv.Quote for text (what %q prints): control characters escaped, the rest as it is. */
function goQuote(s: string): string {
  const esc = (c: string) => goEscapes[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  return `"${s.replace(/[\x00-\x1f\x7f"\\]/g, esc)}"`;
}

/** Go's time.Duration String(): `1h2m3.5s`, `1m0s`, `0s`; under a second in ms, µs or ns (`1.5ms`). */
export function goDuration(ns: number): string {
  // The digits of v / 10^prec: the fraction without trailing zeros (and no dot when there is none).
  const frac = (v: bigint, prec: number): [string, bigint] => {
    const p = 10n ** BigInt(prec);
    const f = (v % p).toString().padStart(prec, '0').replace(/0+$/, '');
    return [f ? `.${f}` : '', v / p];
  };
  const u = BigInt(Math.trunc(ns));
  if (u === 0n) return '0s';
  if (u < 1_000_000_000n) {
    const [prec, unit] = u < 1000n ? [0, 'ns'] : u < 1_000_000n ? [3, 'µs'] : [6, 'ms'];
    const [f, whole] = frac(u, prec);
    return `${whole}${f}${unit}`;
  }
  const [f, secs] = frac(u, 9);
  const mins = secs / 60n;
  const hours = mins / 60n;
  const s = `${secs % 60n}${f}s`;
  if (mins === 0n) return s;
  return hours === 0n ? `${mins}m${s}` : `${hours}h${mins % 60n}m${s}`;
}

const runeEscapes: Record<number, string> = { 7: 'a', 8: 'b', 9: 't', 10: 'n', 11: 'v', 12: 'f', 13: 'r' };

/** Go's strconv.QuoteRune (what %q prints for an int): `'A'`, `'\x04'`, `'\n'`. */
function goQuoteRune(n: number): string {
  if (n === 0x27 || n === 0x5c) return `'\\${String.fromCharCode(n)}'`;
  if (runeEscapes[n]) return `'\\${runeEscapes[n]}'`;
  if (n < 0 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return "'\ufffd'";
  const c = String.fromCodePoint(n);
  if (/^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(c)) return `'${c}'`;
  if (n < 0x80) return `'\\x${n.toString(16).padStart(2, '0')}'`;
  return n < 0x10000 ? `'\\u${n.toString(16).padStart(4, '0')}'` : `'\\U${n.toString(16).padStart(8, '0')}'`;
}

/** BuildKit's history text for a step (ONBUILD has none: BuildKit records no history entry for it). */
export function historyText(step: Step): string {
  switch (step.kind) {
    case 'run': {
      // The stage's ARGs first, as `|N K=V ...`: what the command ran with, as BuildKit records it.
      const args = step.historyArgs ?? [];
      return `RUN ${args.length > 0 ? `|${args.length} ${args.join(' ')} ` : ''}${step.argv.join(' ')} # buildkit`;
    }
    // BuildKit's words, not the instruction as written: the sources expanded (never the JSON form), heredocs
    // by name (never their text), the destination as written (not resolved against WORKDIR), and of the flags
    // only those Dockerfile 1.7 names (dockerd 20.10's BuildKit named none).
    case 'copy':
    case 'add': {
      const words = [step.kind.toUpperCase()];
      if (step.parents) words.push('--parents');
      if (step.chown) words.push(`--chown=${step.chown}`);
      if (step.chmod) words.push(`--chmod=${step.chmod}`);
      words.push(...step.sources, ...step.inline.map((h) => `<<${h.name}`), step.destWritten);
      return `${words.join(' ')} # buildkit`;
    }
    // The directory as the config has it (expanded, absolute), with no "# buildkit" (BuildKit adds it only to
    // steps it runs on a state).
    case 'workdir':
      return `WORKDIR ${step.path}`;
    // The pairs as they were set: expanded and unquoted.
    case 'env':
    case 'label':
      return `${step.kind.toUpperCase()} ${step.pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    // What BuildKit prints with Go's fmt: %v of the port set (a map, keys sorted) and of a list, %q of a list.
    case 'expose': {
      const ports = [...new Set(step.ports.flatMap(expandPorts))].sort();
      return `EXPOSE map[${ports.map((p) => `${p}:{}`).join(' ')}]`;
    }
    case 'volume':
      return `VOLUME [${step.paths.join(' ')}]`;
    case 'shell':
      return `SHELL [${step.argv.join(' ')}]`;
    case 'cmd':
    case 'entrypoint':
      return `${step.kind.toUpperCase()} [${step.argv.map(goQuote).join(' ')}]`;
    case 'user':
      return `USER ${step.user}`;
    case 'stopsignal':
      return `STOPSIGNAL ${step.signal}`;
    case 'maintainer':
      return `MAINTAINER ${step.name}`;
    // Go's %q of the config's healthcheck struct: the test, the durations (Interval, Timeout, StartPeriod,
    // StartInterval: dockerd 20.10's BuildKit had no StartInterval) and Retries, an int, as a rune.
    case 'healthcheck': {
      const d = (ns: number | undefined) => goQuote(goDuration(ns ?? 0));
      const times = [step.interval, step.timeout, step.startPeriod, step.startInterval].map(d).join(' ');
      return `HEALTHCHECK &{[${step.test.map(goQuote).join(' ')}] ${times} ${goQuoteRune(step.retries ?? 0)}}`;
    }
    default:
      return step.source.replace(/\s+/g, ' ').trim();
  }
}
