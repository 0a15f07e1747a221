// `tsbuild commit CONTAINER [REPOSITORY[:TAG]]`: the container's changes as a new image. The
// `--change` instructions are Dockerfile lines: parsed and applied here with the build's own config
// rules (image/config.ts), which @tsbuild/containers leaves to its caller.
import { parse, buildGraph } from '@tsbuild/parser';
import type { ImageConfig } from '@tsbuild/layerstore';
import { ContainerError, commitContainer, findDoc } from '@tsbuild/containers';
import { list, parseArgs, str } from '../args.js';
import { UsageError } from '../../errors.js';
import { openStore } from '../root.js';
import { applyStep, inheritConfig, type StageConfig } from '../../image/config.js';
import { guarded } from './guarded.js';
import { flagsOf } from '../flags.js';

const allowed = new Set([
  'cmd',
  'entrypoint',
  'env',
  'expose',
  'label',
  'user',
  'workdir',
  'volume',
  'stopsignal',
  'onbuild',
  'shell',
  'healthcheck',
]);

/** The image's config with Dockerfile-like changes (`CMD ["sh"]`, `ENV A=1`, ...) applied, ONBUILD consumed. */
export function applyChanges(base: ImageConfig, changes: string[]): ImageConfig {
  const state: StageConfig = { image: inheritConfig(base), cmdSet: false };
  if (changes.length === 0) return state.image;
  let graph;
  try {
    graph = buildGraph(parse(`FROM scratch\n${changes.join('\n')}\n`, { file: '--change' }), { file: '--change' });
  } catch (e) {
    throw new ContainerError(`--change: ${(e as Error).message}`);
  }
  for (const step of graph.stages[0].steps as { kind: string }[]) {
    if (!allowed.has(step.kind))
      throw new ContainerError(
        `--change: ${step.kind.toUpperCase()} is not allowed (only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, ` +
          `WORKDIR, VOLUME, STOPSIGNAL, ONBUILD, SHELL, HEALTHCHECK)`,
      );
    applyStep(state, step as Parameters<typeof applyStep>[1]);
  }
  return state.image;
}

export async function commitCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('commit'));
  if (p.positionals.length < 1 || p.positionals.length > 2)
    throw new UsageError('"tsbuild commit" requires 1 or 2 arguments: CONTAINER [REPOSITORY[:TAG]]');
  const store = await openStore(str(p, 'root'), 'commit');
  return guarded(async () => {
    const d = await findDoc(store, p.positionals[0]);
    const changes = list(p, 'change');
    const image = await commitContainer(store, d, {
      configure: (base) => applyChanges(base, changes),
      changes,
      message: str(p, 'message'),
      author: str(p, 'author'),
      pause: p.flags.get('pause') !== false,
    });
    const tag = p.positionals[1];
    if (tag)
      await store.images.tag(tag, image).catch((e: Error) => {
        throw new UsageError(`${tag}: ${e.message}`);
      });
    process.stdout.write(image.configDigest + '\n');
    return 0;
  });
}
