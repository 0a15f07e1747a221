// What --explain keeps of each filesystem step and how it says why one missed. Split from
// solver.ts because it is bookkeeping beside the build: a small pointer from "this step of this
// Dockerfile" to the key it had last time, each key's inputs stored apart (for a COPY of a large
// tree they are big) so that a cache hit reads only small records, and the comparison of the
// inputs then and now that names what changed.
import type { Digest, Store } from '@tsbuild/layerstore';
import { findChange, sha256, type Change, type Inputs, type InputStream } from './cachekey.js';
import type { ExplainRow, StageState } from './state.js';
import { keepManifests, npmManifests } from './npm-inputs.js';

/** The record pointing from a step of a Dockerfile (by identity, stage and position) to its last key. */
export const pointerId = (identity: string, stage: string, index: number): Digest =>
  `sha256:${sha256(`explain\0${identity}\0${stage}\0${index}`)}`;

/** The record holding the inputs of a key. */
export const inputsId = (key: string): Digest => `sha256:${sha256(`inputs\0${key}`)}`;

/**
 * Stores a key's inputs and the npm manifests they name (so that a later miss can diff them). The inputs of a
 * copied tree are a pair per file: they are written as they are spelled out, a batch at a time, never held
 * whole, as pairs or as one JSON text. The record is the JSON `{ value: { inputs }, blobs }` put() would write.
 */
export async function saveInputs(
  store: Store,
  contextDir: string,
  key: string,
  parts: Iterable<InputStream>,
): Promise<void> {
  const manifests = new Map<string, string>();
  async function* value(): AsyncGenerator<string> {
    let text = '{"inputs":[';
    let first = true;
    let batch: Inputs = [];
    const flush = () => {
      for (const [path, hex] of npmManifests(batch)) manifests.set(path, hex);
      for (const pair of batch) {
        text += (first ? '' : ',') + JSON.stringify(pair);
        first = false;
      }
      batch = [];
    };
    for (const part of parts) {
      for (const pair of part) {
        batch.push(pair);
        if (batch.length < batchPairs) continue;
        flush();
        if (text.length >= chunkChars) {
          yield text;
          text = '';
        }
      }
    }
    flush();
    yield `${text}]}`;
  }
  await store.cache.putStream(inputsId(key), value(), async () => ({
    blobs: manifests.size ? await keepManifests(store, contextDir, manifests) : [],
  }));
}

/** Pairs spelled out before they are written. */
const batchPairs = 256;
/** About what a write takes at once. */
const chunkChars = 1 << 16;

/**
 * The --explain fields of a step that runs: the flag that bypassed the cache, or the first input
 * that changed since `previous` (none recorded: the step's inputs are not compared).
 */
export function missNote(
  flag: '--no-cache' | '--no-cache-filter' | undefined,
  previous: Inputs | undefined,
  inputs: () => Inputs,
  parent: StageState,
): Pick<ExplainRow, 'status' | 'reason' | 'change' | 'npm'> {
  // Today's inputs are spelled out only to be compared with a record (for a tree, a record per file).
  const now = flag || !previous ? [] : inputs();
  const change: Change = flag ? { ...noCacheChange, text: flag } : missReason(previous, now, parent);
  return {
    status: flag ? 'no-cache' : 'miss',
    reason: change.text,
    change,
    ...(change.kind === 'file' ? { npm: npmPairs(previous, now) } : {}),
  };
}

const noCacheChange: Change = { kind: 'no-cache', input: null, before: null, after: null, text: '--no-cache' };

/**
 * Why a step misses. Below a step that missed in this build, the step's own inputs are compared
 * first (the parent key differs anyway): a changed input of its own is named; otherwise it is
 * "below a miss", which a dry run reports for steps that would run only because a step above does.
 */
function missReason(previous: Inputs | undefined, now: Inputs, parent: StageState): Change {
  if (!parent.missed || !previous) {
    const change = findChange(previous, now);
    // The step right after FROM: its parent key is the base image's, so the base moved.
    if (change.kind === 'parent' && parent.base?.key === parent.key)
      return {
        ...change,
        kind: 'base',
        input: parent.base.ref,
        text: `base image ${parent.base.ref} now has another digest`,
      };
    return change;
  }
  const own = (inputs: Inputs) => inputs.filter(([name]) => !name.startsWith('parent:'));
  const change = findChange(own(previous), own(now));
  if (change.kind !== 'record-missing') return change;
  return {
    kind: 'parent',
    input: parent.keyLabel,
    before: null,
    after: parent.key,
    text: `below a miss: the step before it changed (${parent.keyLabel})`,
  };
}
function npmPairs(previous: Inputs | undefined, now: Inputs): ExplainRow['npm'] {
  const before = previous ? npmManifests(previous) : new Map<string, string>();
  const after = npmManifests(now);
  if (!before.size && !after.size) return undefined;
  const paths = [...new Set([...before.keys(), ...after.keys()])].sort();
  return paths.map((path) => ({ path, before: before.get(path) ?? null, after: after.get(path) ?? null }));
}
