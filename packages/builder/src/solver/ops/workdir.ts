// WORKDIR creates the directory (owned by the current USER, as BuildKit does) when the
// image does not have it; an existing directory makes an empty diff and so no layer.
import type { WorkdirStep } from '@tsbuild/parser';
import type { KeyBuilder } from '../cachekey.js';
import type { Exec, StepContext } from './context.js';
import { resolveUser } from '@tsbuild/sandbox';
import { Staging } from './staging.js';
import { commitDiff, scratchDir } from './commit.js';
import { BuildError } from '../../errors.js';

export async function workdirStep(ctx: StepContext, step: WorkdirStep, kb: KeyBuilder): Promise<Exec> {
  const user = ctx.state.config.image.config?.User ?? '';
  kb.add('instruction', `WORKDIR ${step.path}`).add('user', user);
  return async () => {
    const view = await ctx.fs.view(ctx.state.layers);
    const canonical = await view.resolve(step.path, true);
    const existing = await view.lstatCanonical(canonical);
    if (existing?.stat.isDirectory()) return null;
    if (existing) throw new BuildError(`WORKDIR ${step.path}: exists in the image and is not a directory`);
    const owner = await resolveUser(view, user).catch((e) => {
      throw new BuildError(`WORKDIR ${step.path}: ${(e as Error).message}`);
    });
    const dir = await scratchDir(ctx, 'workdir-');
    try {
      const mtime = ctx.opts.sourceDateEpoch !== undefined ? new Date(ctx.opts.sourceDateEpoch * 1000) : new Date();
      const staging = new Staging(dir.path, view, mtime);
      try {
        await staging.mkdirs(canonical, { uid: owner.uid, gid: owner.gid });
        await staging.dateTouched();
        await staging.finish();
      } finally {
        staging.close();
      }
      return await commitDiff(ctx, { dir: dir.path, scratch: dir, entries: staging.entries() }, false);
    } finally {
      await dir.cleanup();
    }
  };
}
