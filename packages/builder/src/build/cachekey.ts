// A step's cache key is the digest of its named inputs, in order: the parent step's key,
// the instruction as expanded, the environment it sees, and the content of what it reads.
// Keeping the inputs by name (not just their digest) is what lets `--explain` say which one
// changed since the last build of the same step.
import { createHash } from 'node:crypto';

export type Inputs = [name: string, digest: string][];

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export class KeyBuilder {
  readonly inputs: Inputs = [];

  add(name: string, value: string): this {
    this.inputs.push([name, sha256(value)]);
    return this;
  }
  /** An input that is already a digest (parent key, file hash, image digest). */
  addDigest(name: string, digest: string): this {
    this.inputs.push([name, digest]);
    return this;
  }
  key(): `sha256:${string}` {
    // One update of the joined text: a COPY of a large tree has tens of thousands of inputs.
    let text = '';
    for (const [n, d] of this.inputs) text += `${n}\0${d}\n`;
    return `sha256:${createHash('sha256').update(text).digest('hex')}`;
  }
}

/** What changed between the inputs of the last build of a step and this one, in words. */
export function firstChange(before: Inputs | undefined, now: Inputs): string {
  if (!before) return 'no earlier build of this step';
  const old = new Map(before);
  for (const [name, digest] of now) {
    const was = old.get(name);
    if (was === undefined) return describe(name, 'is new');
    if (was !== digest) return describe(name, 'changed');
  }
  const current = new Set(now.map(([n]) => n));
  for (const [name] of before) if (!current.has(name)) return describe(name, 'was removed');
  return 'its cache entry is missing from the store (pruned, or built elsewhere)';
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
      return `file ${subject} ${what}`;
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
    case 'mount':
      return `mount ${subject} ${what}`;
    default:
      return `${name} ${what}`;
  }
}
