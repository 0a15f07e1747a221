// A step's cache key is the digest of its named inputs, in order: the parent step's key,
// the instruction as expanded, the environment it sees, and the content of what it reads.
// Keeping the inputs by name (not just their digest) is what lets `--explain` say which one
// changed since the last build of the same step.
import { createHash } from 'node:crypto';
import { displayName } from '../context/listing.js';

export type Inputs = [name: string, digest: string][];
/** Inputs one at a time: a group of a copied tree spelled out while it is read. */
export type InputStream = Iterable<[name: string, digest: string]>;

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The digests of short key inputs, remembered: every RUN step keys each variable of its environment, so a
 * Dockerfile that sets N variables hashes the same values again at every later RUN (N × RUNs; each hash
 * ~2 µs, a lookup ~0.1). Bounded: short values only, and forgotten wholesale when full.
 */
const valueDigests = new Map<string, string>();
const MemoMaxLength = 256;
const MemoMaxEntries = 4096;

function valueDigest(value: string): string {
  if (value.length > MemoMaxLength) return sha256(value);
  let d = valueDigests.get(value);
  if (d === undefined) {
    if (valueDigests.size >= MemoMaxEntries) valueDigests.clear();
    valueDigests.set(value, (d = sha256(value)));
  }
  return d;
}

/**
 * A group of inputs that enters the key as one digest (a copied directory: its Merkle content
 * digest) and is spelled out, one input per file, only when someone reads `inputs` (on a miss,
 * to explain it and to keep for the next explanation). The digest must change exactly when
 * the expansion does.
 */
interface Group {
  name: string;
  digest: string;
  expand: () => InputStream;
}

export class KeyBuilder {
  private readonly parts: ([name: string, digest: string] | Group)[] = [];
  /** Why the step hits although something it reads was rebuilt (for --explain). */
  hitNote: string | undefined;
  /**
   * What must be done before the inputs are spelled out (`inputs`, `inputParts`), if anything: a group
   * whose digest was remembered lists what it names only then (a COPY --from, copy.ts). The solver awaits it
   * on a miss; a hit never spells the inputs out.
   */
  beforeInputs: (() => Promise<void>) | undefined;

  add(name: string, value: string): this {
    return this.addDigest(name, valueDigest(value));
  }
  /** An input that is already a digest (parent key, file hash, image digest). */
  addDigest(name: string, digest: string): this {
    this.parts.push([name, digest]);
    return this;
  }
  addGroup(name: string, digest: string, expand: () => InputStream): this {
    this.parts.push({ name, digest, expand });
    return this;
  }
  /**
   * The named inputs, groups spelled out: a record per file of a copied tree, made anew at each call and not
   * kept here, so that a step holds them only while they are compared or written, not while it runs.
   */
  get inputs(): Inputs {
    const out: Inputs = [];
    for (const part of this.inputParts()) for (const i of part) out.push(i);
    return out;
  }
  /** The same inputs a part at a time (a group spelled out as it is read), for writing them in pieces. */
  *inputParts(): Generator<InputStream> {
    for (const p of this.parts) yield Array.isArray(p) ? [p] : p.expand();
  }
  key(): `sha256:${string}` {
    let text = '';
    for (const p of this.parts) text += Array.isArray(p) ? `${p[0]}\0${p[1]}\n` : `${p.name}\0${p.digest}\n`;
    return `sha256:${createHash('sha256').update(text).digest('hex')}`;
  }
}

/**
 * The first input that differs from the last build of the same step, for `--explain` and its JSON
 * (docs/explain.md): `kind` is the input's kind, `input` its name, `before`/`after` its digests
 * (null when it is new or was removed). Digests, never values: a build arg may carry a token.
 */
export interface Change {
  kind: ChangeKind;
  input: string | null;
  before: string | null;
  after: string | null;
  /** The same in words ("file src/a.js changed"). */
  text: string;
}

export type ChangeKind =
  | 'first-build'
  | 'record-missing'
  | 'no-cache'
  | 'parent'
  | 'base'
  | 'file'
  | 'source'
  | 'env'
  | 'arg'
  | 'instruction'
  | 'from'
  | 'mount'
  | 'input'
  | 'not-computed';

/** What changed between the inputs of the last build of a step and this one, in words. */
export function firstChange(before: Inputs | undefined, now: Inputs): string {
  return findChange(before, now).text;
}

/** What changed between the inputs of the last build of a step and this one. */
export function findChange(before: Inputs | undefined, now: Inputs): Change {
  if (!before)
    return { kind: 'first-build', input: null, before: null, after: null, text: 'no earlier build of this step' };
  const old = new Map(before);
  for (const [name, digest] of now) {
    const was = old.get(name);
    if (was === undefined) return change(name, null, digest, 'is new');
    if (was !== digest) return change(name, was, digest, 'changed');
  }
  const current = new Set(now.map(([n]) => n));
  for (const [name, digest] of before) if (!current.has(name)) return change(name, digest, null, 'was removed');
  return {
    kind: 'record-missing',
    input: null,
    before: null,
    after: null,
    text: 'its cache entry is missing from the store (pruned, or built elsewhere)',
  };
}

const kinds: Record<string, ChangeKind> = {
  parent: 'parent',
  base: 'base',
  file: 'file',
  source: 'source',
  env: 'env',
  arg: 'arg',
  instruction: 'instruction',
  from: 'from',
  mount: 'mount',
  unknown: 'not-computed',
};

function change(name: string, before: string | null, after: string | null, what: string): Change {
  const [kind, ...rest] = name.split(':');
  const subject = rest.join(':');
  const k = kinds[kind] ?? 'input';
  // A digest that changes exactly when the input does: the input's own when it is one (a parent key,
  // an image), else the digest of what the key holds for it (a file's `kind:mode:content digest`).
  const digest = (d: string | null) =>
    d === null ? null : /^[a-f0-9]{64}$/.test(d) ? `sha256:${d}` : d.startsWith('sha256:') ? d : `sha256:${sha256(d)}`;
  return {
    kind: k,
    input: k === 'input' ? name : k === 'file' ? displayName(subject) : subject || null,
    before: digest(before),
    after: digest(after),
    text: describe(name, what),
  };
}

function describe(name: string, what: string): string {
  const [kind, ...rest] = name.split(':');
  const subject = rest.join(':');
  switch (kind) {
    case 'parent':
      return `the step before it changed (${subject || 'previous step'})`;
    case 'base':
      return `base image ${subject} ${what === 'changed' ? 'now has another digest' : what}`;
    case 'file':
      return `file ${displayName(subject)} ${what}`;
    case 'source':
      return `source ${subject} ${what}`;
    case 'env':
      return `ENV ${subject} ${what}`;
    case 'arg':
      return `build arg ${subject} ${what}`;
    case 'instruction':
      return `the instruction text ${what}`;
    case 'from':
      return `the stage or image it copies from (${subject}) changed`;
    case 'copied':
      return `copied file ${subject} ${what}`;
    case 'mount':
      return `mount ${subject} ${what}`;
    case 'unknown':
      return `the content of ${subject} is not known before a build (a dry run neither downloads nor runs)`;
    default:
      return `${name} ${what}`;
  }
}
