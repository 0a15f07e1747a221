// COPY and ADD: stage the new files under their destination (with parents) in a diff
// directory, then commit it as one layer. Directory sources copy their contents; a single
// file goes to `dest` unless dest ends in '/' or is a directory; several sources need a
// directory. ADD also unpacks local archives and fetches URLs.
import { closeSync } from 'node:fs';
import { posix } from 'node:path';
import type { CopyStep } from '@tsbuild/parser';
import type { KeyBuilder } from '../cachekey.js';
import type { Exec, StepContext } from './context.js';
import { isPending, type StageLayer } from '../../rootfs/layers.js';
import { resolveChown, RootView } from '@tsbuild/sandbox';
import { chainIDs, isOpaque } from '@tsbuild/layerstore';
import { BuildError, where } from '../../errors.js';
import { commitDiff, scratchDir } from './commit.js';
import { Staging, rel, seconds, type EntryList } from './staging.js';
import { BulkCopy } from './bulkcopy.js';
import { BeneathReader, fileEntry, type Entry } from '@tsbuild/layerstore/layer';
import { addFileInputs, fromContext, type SourceItem } from './sources.js';
import { fromView } from './view-sources.js';
import { place, placeTree } from './place.js';
import { addArchive, archiveKind } from './archive.js';
import { fetchUrl, isUrl } from './fetch.js';
import { copiedContent, copiedInputs, rememberedCopied } from './copied.js';
import { testStop, trace } from '../../trace.js';
import { encodeName } from '../../context/listing.js';

export async function copyStep(ctx: StepContext, step: CopyStep, kb: KeyBuilder): Promise<Exec> {
  kb.add(
    'instruction',
    JSON.stringify({
      kind: step.kind,
      sources: step.sources,
      dest: step.dest,
      chown: step.chown,
      chmod: step.chmod,
      parents: step.parents,
      exclude: step.exclude,
      link: step.link,
      checksum: step.checksum,
      inline: step.inline,
      unpack: step.unpack,
    }),
  );
  const mode = parseChmod(step);
  const cleanups: (() => Promise<void>)[] = [];

  // Resolve and hash the sources now: the key depends on their content.
  let items: SourceItem[] = [];
  let fromLabel = 'the build context';
  let fromLayers = null as null | readonly StageLayer[];
  // Set when the sources are listed only if the step runs (a COPY --from whose copied content is remembered).
  let sourcesLater: (() => Promise<void>) | undefined;
  if (step.from) {
    if (step.from.type === 'stage') {
      // The copy is keyed on what it copies (copied.ts), so its key needs the stage built: as
      // before (when the stage's key was an input), the step waits for the whole stage. Stages
      // still run in parallel up to here; what is new is the hashing of the copied files on the
      // way, which a stage whose layers are all cached skips.
      const st = await ctx.stages.stage(step.from.stage);
      fromLayers = st.layers;
      fromLabel = `stage ${ctx.stages.stageNameOf(step.from.stage)}`;
    } else {
      const image = ctx.opts.bases.get(step.from.ref);
      if (!image) throw new BuildError(`${where(step)}: image ${step.from.ref} was not resolved`);
      fromLayers = image.layers;
      fromLabel = `image ${step.from.ref}`;
      kb.addDigest(`from:${fromLabel}`, image.configDigest.replace(/^sha256:/, '')); // the image id, as FROM's key
    }
    // A dry run reads a stage's files only from snapshots already in the store (it unpacks nothing), and
    // cannot know what a stage that runs will make: then the key is not computed (docs/explain.md). An
    // image's files are not in the key (its digest is): a dry run does not read them.
    const stage = step.from.type === 'stage' ? step.from.stage : undefined;
    const layers = fromLayers;
    const list = async (view: RootView) => {
      for (const s of step.sources) items.push(...(await fromView(view, s, step, fromLabel, step.exclude, true)));
    };
    // The digest of what is copied may be remembered (copied.ts): then the key needs no file of the stage, and
    // its snapshots are looked up and its sources listed only if the step runs or --explain compares inputs.
    const remembered = stage !== undefined && !ctx.opts.dryRun ? await rememberedCopied(ctx, step, layers) : undefined;
    let keyed = remembered !== undefined;
    if (remembered !== undefined) {
      let listed: Promise<void> | undefined;
      sourcesLater = () => (listed ??= ctx.fs.view(layers).then(list));
      kb.addGroup(`copied:${fromLabel}`, remembered, () => copiedInputs(items)());
      kb.beforeInputs = sourcesLater;
    } else {
      const view = !ctx.opts.dryRun
        ? await ctx.fs.view(layers)
        : stage === undefined
          ? undefined
          : await dryRunView(ctx, stage, layers);
      if (ctx.opts.dryRun && stage !== undefined && !view) kb.add(`unknown:${fromLabel}`, 'unknown');
      if (view) {
        await list(view);
        if (stage !== undefined) {
          // A dry run asks for the remembered digest only once it has a view: without one the key is unknown.
          const known = ctx.opts.dryRun ? await rememberedCopied(ctx, step, layers) : undefined;
          const copied =
            known !== undefined
              ? { digest: known, inputs: copiedInputs(items) }
              : await copiedContent(ctx, step, layers, items);
          kb.addGroup(`copied:${fromLabel}`, copied.digest, copied.inputs);
          keyed = true;
        }
      }
    }
    // A hit although the stage re-ran: --explain says why.
    if (keyed && stage !== undefined && ctx.stages.rebuilt(stage)) kb.hitNote = 'copied content unchanged';
  } else {
    for (const s of step.sources) {
      if (isUrl(s)) {
        if (step.kind !== 'add') throw new BuildError(`${where(step)}: COPY does not take URLs; use ADD`, 2);
        if (ctx.opts.dryRun) {
          // A dry run downloads nothing: --checksum is what the content must be; without it the
          // content, and so the key, is unknown (docs/explain.md: not-computed).
          if (step.checksum) kb.add(`source:${s}`, step.checksum.replace(/^sha256:/, ''));
          else kb.add(`unknown:${s}`, 'unknown');
          continue;
        }
        const fetched = await fetchUrl(ctx, s, step);
        cleanups.push(fetched.cleanup);
        items.push(fetched.item);
        kb.add(`source:${s}`, fetched.item.files[0].hash!);
      } else {
        items.push(...(await fromContext(ctx, s, step, step.exclude, true)));
      }
    }
    addFileInputs(
      kb,
      items.filter((i) => i.tree || !i.files[0].host.startsWith(ctx.opts.store.root)),
    );
  }
  kb.add('chown-user', step.chown ?? '');

  const inlineCount = step.inline.length;
  let total = items.length + inlineCount;
  if (ctx.opts.dryRun) return dryRunExec;
  const checkDest = async () => {
    total = items.length + inlineCount;
    if (total > 1 && !step.dest.endsWith('/') && !(await destIsDirInImage(ctx, step.dest))) {
      if (step.sources.length + inlineCount > 1) {
        throw new BuildError(
          `${where(step)}: When using ${step.kind.toUpperCase()} with more than one source file, the destination ` +
            `must be a directory and end with a /`,
          1,
        );
      }
    }
  };
  if (!sourcesLater) await checkDest();
  const later = sourcesLater;
  const exec: Exec = async () => {
    if (items.some((i) => i.root !== undefined)) testStop('context-read');
    const dir = await scratchDir(ctx, 'copy-');
    let copying: Promise<void> = Promise.resolve();
    let staging: Staging | undefined;
    let bulk: BulkCopy | undefined;
    try {
      const view = await ctx.fs.view(ctx.state.layers);
      const owner = step.chown
        ? await resolveChown(view, step.chown).catch((e) => {
            throw new BuildError(`${where(step)}: ${(e as Error).message}`);
          })
        : undefined;
      const mtime = ctx.opts.sourceDateEpoch !== undefined ? new Date(ctx.opts.sourceDateEpoch * 1000) : new Date();
      staging = new Staging(dir.path, view, mtime);
      bulk = new BulkCopy(ctx.opts.context.dir, dir.path);
      const newDirs = { uid: owner?.uid ?? 0, gid: owner?.gid ?? 0 };
      const destCanonical = await view.resolve(step.dest, true);
      const destExistsAsDir = (await view.lstatCanonical(destCanonical))?.stat.isDirectory() ?? false;
      const intoDir = step.dest.endsWith('/') || destExistsAsDir || total > 1;
      // One source and no heredoc: its copy runs while the layer is written (see below).
      const alone = total === 1;

      for (const item of items) {
        // A directory's list of files is not made here: a context tree is walked by placeTree without one.
        const top = item.isDir ? undefined : item.files[0];
        if (
          top &&
          step.kind === 'add' &&
          !step.from &&
          top.kind === 'file' &&
          step.unpack !== false &&
          !top.host.startsWith(ctx.opts.store.root)
        ) {
          // Opened beneath the context's fd (never through a symlink put there since the listing), read from that fd.
          const reader = new BeneathReader(encodeName);
          let fd: number;
          try {
            fd = reader.open(item.root ?? ctx.opts.context.dir, top.host, item.path);
          } catch (e) {
            throw new BuildError(`${where(step)}: ${(e as Error).message}`);
          } finally {
            reader.close();
          }
          try {
            const kind = await archiveKind(top.host, fd).catch((e) => {
              throw new BuildError(`${where(step)}: ${(e as Error).message}`);
            });
            if (kind) {
              await staging.mkdirs(destCanonical, newDirs);
              await addArchive(ctx, top.host, fd, kind, staging, destCanonical, step);
              continue;
            }
          } finally {
            closeSync(fd);
          }
        }
        let target: string;
        if (item.isDir) {
          target = step.parents ? posix.join(destCanonical, item.path) : destCanonical;
        } else if (intoDir) {
          target = posix.join(destCanonical, step.parents ? item.path : posix.basename(item.path || top!.host));
        } else {
          target = destCanonical;
        }
        await staging.mkdirs(item.isDir ? target : posix.dirname(target), newDirs);
        // A context directory copied as it is goes through the copier; the layer reads the context.
        const viaCp = bulk.available && !step.from && item.isDir && !owner && mode === undefined;
        // Alone, a context directory is walked from the listing, with no record per file kept (any size of tree).
        if (viaCp && alone && item.tree) placeTree(staging, item, target, bulk);
        else await place(staging, item, target, owner, mode, viaCp ? bulk : undefined, viaCp && alone);
        // With other sources, the copy finishes before the next one changes the tree (an archive may put a
        // link where this item has a directory: the copier would refuse it, and the tree must not change under it).
        if (!alone) {
          await bulk.run();
          staging.makeLinks();
        }
      }
      for (const inline of step.inline) {
        const target = intoDir ? posix.join(destCanonical, inline.name) : destCanonical;
        await staging.mkdirs(posix.dirname(target), newDirs);
        // What an earlier source put here is replaced, never written through.
        staging.fs.remove(rel(target));
        const meta = { mode: mode ?? 0o644, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0 };
        staging.fs.writeFile(rel(target), Buffer.from(inline.content), { ...meta, mtime });
        const size = Buffer.byteLength(inline.content);
        staging.add(fileEntry({ path: target, ...meta, mtime: seconds(mtime) }, staging.host(target), size));
      }
      // The layer is written from the entries (context files) while the copier fills the staging dir;
      // directory times are set once it is done, and only then does the dir become the snapshot.
      await staging.dateTouched();
      const entries = staging.entries();
      await refuseTypeChanges(view, entries, step);
      trace(`${ctx.state.label}: staged`);
      copying = bulk.run();
      copying.catch(() => {});
      const staged = staging;
      return await commitDiff(ctx, { dir: dir.path, scratch: dir, entries }, false, async () => {
        await copying;
        trace(`${ctx.state.label}: copied`);
        staged.makeLinks();
        await staged.finish();
      });
    } finally {
      await copying.catch(() => {});
      bulk?.discard();
      staging?.close();
      await dir.cleanup();
      for (const c of cleanups) await c().catch(() => {});
    }
  };
  if (!later) return exec;
  return async (handle) => {
    await later();
    await checkDest();
    return exec(handle);
  };
}

/**
 * BuildKit's copier refuses to put a non-directory where the image has a directory ("cannot replace to
 * directory ... with file") and a directory where it has anything else, a symlink included ("cannot copy
 * to non-directory: ..."), both by lstat of each path it writes; tsbuild would replace the image's entry
 * (and a directory's whole content) silently. Only paths the image has are looked up: `entries` is in walk
 * order, so a path below one the image lacks is skipped, and each directory the image has is listed once
 * its second entry is checked (a new file in it then costs no lookup); a streamed tree (a context directory,
 * the step's only source) below a directory the image lacks is passed over whole, not walked to skip each of
 * its entries. Without a list (an archive was unpacked), nothing is checked: BuildKit's untar replaces too.
 */
async function refuseTypeChanges(view: RootView, entries: EntryList | undefined, step: CopyStep): Promise<void> {
  if (!entries) return;
  // Directories of the layer that the image does not have as directories: nothing below them is looked up.
  // Only directories are kept (only they have entries below them): a set of every path was most of what a
  // COPY of a large tree held.
  const notDirInImage = new Set<string>();
  const listings = new Map<string, Set<string>>();
  const asked = new Set<string>();
  const check = async (e: Entry): Promise<void> => {
    const path = '/' + e.path;
    const parent = posix.dirname(path);
    if (notDirInImage.has(parent)) {
      if (e.type === 'directory') notDirInImage.add(path);
      return;
    }
    // The first entry of a directory is looked up alone: a listing merges the directory of every layer of
    // the image (a stage of many COPY steps: dozens of directory reads for each one-file COPY).
    let names = listings.get(parent);
    if (!names && asked.has(parent)) listings.set(parent, (names = new Set(await view.readdir(parent))));
    asked.add(parent);
    const below = !names || names.has(posix.basename(path)) ? await view.lstatCanonical(path) : undefined;
    const isDir = below?.stat.isDirectory() ?? false;
    if (!isDir && e.type === 'directory') notDirInImage.add(path);
    if (!below) return;
    if (e.type === 'directory' && !isDir) {
      throw new BuildError(`${where(step)}: cannot copy to non-directory: ${path}`, 1);
    }
    if (e.type !== 'directory' && isDir) {
      throw new BuildError(`${where(step)}: cannot replace to directory ${path} with file`, 1);
    }
  };
  const parts = entries.parts;
  if (!parts) {
    for (const e of entries) await check(e);
    return;
  }
  for (const e of parts.placed) await check(e);
  // Every entry of the tree is below its directory: none is looked up if the image lacks that directory.
  if (parts.base !== '' && notDirInImage.has('/' + parts.base)) return;
  for (const e of parts.tree) await check(e);
}

async function destIsDirInImage(ctx: StepContext, dest: string): Promise<boolean> {
  const view = await ctx.fs.view(ctx.state.layers);
  return (await view.stat(dest))?.stat.isDirectory() ?? false;
}

function parseChmod(step: CopyStep): number | undefined {
  if (!step.chmod) return undefined;
  if (!/^[0-7]{3,4}$/.test(step.chmod))
    throw new BuildError(`${where(step)}: --chmod=${step.chmod}: only octal modes like 755 or 0644 are supported`, 2);
  return parseInt(step.chmod, 8);
}

/** The exec of a dry run's step: never called (the solver runs nothing in a dry run). */
const dryRunExec: Exec = () => Promise.reject(new BuildError('internal: a dry run executed a step'));

/**
 * A dry run's view of a stage's files: only when the stage ran nothing in the dry run and every layer of
 * it has its snapshot in the store already (a dry run unpacks nothing); else undefined.
 */
async function dryRunView(
  ctx: StepContext,
  stage: number,
  layers: readonly StageLayer[],
): Promise<RootView | undefined> {
  if ((await ctx.stages.stage(stage)).missed) return undefined;
  const dirs: string[] = [];
  for (const chain of chainIDs(
    layers.map((l) => (isPending(l) ? undefined : l.diffID)).filter((d) => d !== undefined),
  )) {
    const snap = await ctx.opts.store.snapshots.get(chain);
    if (!snap) return undefined;
    dirs.push(snap.path);
  }
  if (dirs.length !== layers.length) return undefined;
  return new RootView(dirs.reverse(), isOpaque, true);
}
