// The state a stage starts from (FROM): another stage of this build, scratch, or a resolved base
// image. Split from solver.ts because it is the one step that executes nothing: it keys the chain
// and says, for --explain, which base the stage stood on.
import type { Stage } from '@tsbuild/parser';
import { normalizePlatform, platformMatches, type Platform } from '@tsbuild/layerstore';
import { inheritConfig, scratchConfig } from '../image/config.js';
import { KeyBuilder } from './cachekey.js';
import { BuildError } from '../errors.js';
import type { ExplainRow, StageState } from './state.js';
import type { Reporter } from '../progress/index.js';
import type { StepOptions } from './ops/context.js';

/** What the FROM step needs of the solver. */
export interface BaseSolver {
  readonly explain: ExplainRow[];
  stage(index: number): Promise<StageState>;
  row(stage: Stage, index: number, label: string, instruction: string): Omit<ExplainRow, 'status'>;
}

export type BaseOptions = Pick<StepOptions, 'bases' | 'sourceDateEpoch'> & {
  reporter: Reporter;
  /** The build's target platform (a FROM scratch stage's, whatever its --platform says: BuildKit's rule). */
  platform: { os: string; architecture: string; variant?: string };
  movedBases?: Map<string, string>;
};

export async function baseState(s: BaseSolver, o: BaseOptions, stage: Stage, label: string): Promise<StageState> {
  const from = stage.from;
  if (from.type === 'stage') {
    const parent = await s.stage(from.stage);
    return {
      config: { image: inheritConfig(parent.config.image), cmdSet: false },
      layers: [...parent.layers],
      key: new KeyBuilder().addDigest('parent', parent.key).add('from', 'stage').key(),
      label,
      keyLabel: label,
      created: parent.created,
      missed: parent.missed,
    };
  }
  if (from.type === 'scratch') {
    s.explain.push({
      ...s.row(stage, 0, label, 'FROM scratch'),
      status: 'base',
      reason: 'scratch',
      base: { ref: 'scratch', digest: null },
    });
    const image = scratchConfig(o.platform);
    return {
      config: { image, cmdSet: false },
      layers: [],
      key: new KeyBuilder().add('base', 'scratch').add('platform', platformString(o.platform)).key(),
      label,
      keyLabel: label,
      created: epochOr(o.sourceDateEpoch, new Date(0).toISOString()),
    };
  }
  const where = baseKey(from.ref, foreignPlatform(stage.platform, o.platform));
  const image = o.bases.get(where);
  if (!image) throw new BuildError(`base image ${from.ref} was not resolved`);
  const step = o.reporter.step(label);
  step.done();
  const before = o.movedBases?.get(where);
  s.explain.push({
    ...s.row(stage, 0, label, `FROM ${from.ref}`),
    status: 'base',
    reason: before ? `base image moved: ${before} → ${image.manifestDigest}` : `${from.ref} = ${image.configDigest}`,
    base: { ref: from.ref, digest: image.manifestDigest },
  });
  // Keyed by the image id (config digest: the diffIDs and the config), not the manifest: the same
  // image stored with plain layers here and pulled compressed elsewhere must hit the same cache (as
  // BuildKit keys an image source by its config).
  const key = new KeyBuilder().addDigest(`base:${from.ref}`, image.configDigest).key();
  return {
    config: { image: inheritConfig(image.config), cmdSet: false },
    layers: [...image.layers],
    key,
    label,
    keyLabel: label,
    base: { ref: from.ref, key },
    created: image.config.created ?? new Date(0).toISOString(),
  };
}

/** A parser platform string (os/arch[/variant]) as an OCI platform, normalized as `--platform` values are. */
export function toPlatform(text: string): Platform {
  const [os = 'linux', architecture = '', variant] = text.split('/');
  return normalizePlatform(variant ? { os, architecture, variant } : { os, architecture });
}

/**
 * A FROM's `--platform` when it is not the build's target platform (by any spelling), else undefined:
 * the stage's base is then the target's, shared with FROMs without the flag and COPY --from images.
 */
export function foreignPlatform(stagePlatform: string | undefined, target: Platform): string | undefined {
  return stagePlatform === undefined || platformMatches(target, toPlatform(stagePlatform)) ? undefined : stagePlatform;
}

/** Where a base image is in `bases`: its ref, with the platform when a FROM --platform asked for another one. */
export function baseKey(ref: string, foreign: string | undefined): string {
  return foreign === undefined ? ref : `${foreign} ${ref}`;
}

export function epochOr(epoch: number | undefined, fallback: string): string {
  return epoch === undefined ? fallback : new Date(epoch * 1000).toISOString();
}

function platformString(p: { os: string; architecture: string; variant?: string }): string {
  return `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`;
}
