// RUN --mount: what each mount adds to the step's key, and the host side it is bound from
// (a stage's or image's files, a view of the build context, a cache dir, a tmpfs, a secret, an ssh agent).
// Split from run.ts because the mounts are a protocol of their own beside running the command.
import { closeSync, promises as fsp } from 'node:fs';
import { BeneathReader } from '@tsbuild/layerstore/layer';
import { join, posix } from 'node:path';
import { createHash } from 'node:crypto';
import type { RunMount, RunStep } from '@tsbuild/parser';
import type { Mount } from '@tsbuild/sandbox';
import type { KeyBuilder } from '../cachekey.js';
import type { StepContext } from './context.js';
import { BuildError, where } from '../../errors.js';
import { testStop } from '../../trace.js';
import { fromContext, hashContextTree } from './sources.js';
import { Beneath } from '../../rootfs/beneath-tree.js';
import { acquireCacheMount } from './cachemounts.js';
import { encodeName } from '../../context/listing.js';

export async function keyMount(ctx: StepContext, step: RunStep, m: RunMount, kb: KeyBuilder): Promise<void> {
  switch (m.type) {
    case 'bind':
      if (m.from)
        kb.add(
          `mount:${m.target}`,
          JSON.stringify({ from: m.from, source: m.source, rw: m.readwrite, key: await fromKey(ctx, m.from) }),
        );
      else kb.addDigest(`mount:${m.target}`, await hashContextTree(ctx, m.source, step));
      return;
    case 'cache':
      kb.add(
        `mount:${m.target}`,
        JSON.stringify({
          type: 'cache',
          id: m.id,
          sharing: m.sharing,
          mode: m.mode,
          uid: m.uid,
          gid: m.gid,
          ro: m.readonly,
        }),
      );
      return;
    case 'tmpfs':
      kb.add(`mount:${m.target}`, JSON.stringify({ type: 'tmpfs', size: m.size }));
      return;
    case 'secret':
      // Only the id and place: the secret's value must never shape the key.
      kb.add(
        `mount:${m.target}`,
        JSON.stringify({ type: 'secret', id: m.id, env: m.env, mode: m.mode, uid: m.uid, gid: m.gid }),
      );
      return;
    case 'ssh':
      // The id and place only: which agent or keys stand behind the id must not shape the key.
      kb.add(`mount:${m.target}`, JSON.stringify({ type: 'ssh', id: m.id, mode: m.mode, uid: m.uid, gid: m.gid }));
      return;
  }
}

async function fromKey(
  ctx: StepContext,
  from: NonNullable<Extract<RunMount, { type: 'bind' }>['from']>,
): Promise<string> {
  if (from.type === 'stage') return (await ctx.stages.stage(from.stage)).key;
  const image = ctx.opts.bases.get(from.ref);
  if (!image) throw new BuildError(`image ${from.ref} was not resolved`);
  return image.configDigest; // the image id, as FROM's key (solver.ts)
}
export async function prepareMount(
  ctx: StepContext,
  step: RunStep,
  m: RunMount,
  tmp: string,
  releases: (() => Promise<void>)[],
  env: string[],
): Promise<Mount[]> {
  const target = posix.resolve(ctx.state.config.image.config?.WorkingDir || '/', m.target);
  switch (m.type) {
    case 'bind': {
      let source: string;
      if (m.from) {
        const layers =
          m.from.type === 'stage'
            ? (await ctx.stages.stage(m.from.stage)).layers
            : ctx.opts.bases.get(m.from.ref)!.layers;
        const view = await ctx.fs.view(layers);
        const e = await view.stat(m.source || '/');
        if (!e) throw new BuildError(`${where(step)}: --mount source ${m.source} not found`);
        // A device node, FIFO or socket: inert on a nodev bind, but a read-write bind is a copy,
        // and copying one would open it on the host (the store's filesystem honours devices).
        if (!e.stat.isFile() && !e.stat.isDirectory()) {
          throw new BuildError(
            `${where(step)}: --mount source ${m.source || '/'} is not a regular file, directory or symlink`,
          );
        }
        source = e.host;
        if (m.readwrite) {
          // Writes to a rw bind mount are thrown away, as in BuildKit: give the step a copy, made
          // from the layers as flatten does (regular files, dirs and links only; never fs.cp of a
          // snapshot, which would read a device node's content).
          const copy = join(tmp, `rw-${createHash('sha256').update(target).digest('hex').slice(0, 8)}`);
          await ctx.fs.flatten(layers, m.source || '/', copy);
          return [{ type: 'bind', source: copy, target, readonly: false }];
        }
        if (e.stat.isDirectory() && layers.length > 1) {
          // A directory spread over several layers must be merged before it can be bound.
          const merged = join(tmp, `bind-${createHash('sha256').update(target).digest('hex').slice(0, 8)}`);
          await ctx.fs.flatten(layers, m.source || '/', merged);
          source = merged;
        }
      } else {
        // Not the context directory itself: a tree of exactly what the key holds (below).
        const view = await contextView(ctx, step, m.source, m.readwrite, tmp, target);
        return [{ type: 'bind', source: view, target, readonly: !m.readwrite }];
      }
      return [{ type: 'bind', source, target, readonly: !m.readwrite }];
    }
    case 'cache': {
      const { dir, release } = await acquireCacheMount(ctx.opts.store, m);
      if (release) releases.push(release);
      // --cache-from may carry this id's content (--cache-to ...,mounts=ID): a fresh runner starts warm.
      await ctx.opts.cacheFrom?.restoreMount(m.id, dir);
      return [{ type: 'bind', source: dir, target, readonly: m.readonly }];
    }
    case 'tmpfs':
      return [{ type: 'tmpfs', target, size: m.size }];
    case 'secret': {
      const secret = ctx.opts.secrets.get(m.id);
      let value: Buffer | undefined;
      if (secret?.file) value = await fsp.readFile(secret.file).catch(() => undefined);
      else if (secret?.env !== undefined)
        value = process.env[secret.env] !== undefined ? Buffer.from(process.env[secret.env]!) : undefined;
      if (value === undefined) {
        if (m.required)
          throw new BuildError(
            `${where(step)}: secret "${m.id}" is required but was not given (--secret id=${m.id},src=FILE)`,
          );
        return [];
      }
      if (m.env) env.push(`${m.env}=${value.toString()}`);
      if (m.env && !m.target) return [];
      const host = join(tmp, `secret-${createHash('sha256').update(m.id).digest('hex').slice(0, 12)}`);
      await fsp.writeFile(host, value, { mode: 0o600 });
      await fsp.chown(host, m.uid, m.gid);
      await fsp.chmod(host, m.mode);
      return [
        { type: 'bind', source: host, target: posix.resolve('/', m.target || `/run/secrets/${m.id}`), readonly: true },
      ];
    }
    case 'ssh': {
      const socket = ctx.opts.ssh?.get(m.id);
      if (!socket) {
        if (m.required)
          throw new BuildError(`${where(step)}: ssh agent "${m.id}" is required but was not given (--ssh ${m.id})`);
        return [];
      }
      // As BuildKit: the step finds the (first) agent through SSH_AUTH_SOCK.
      if (!env.some((e) => e.startsWith('SSH_AUTH_SOCK='))) env.push(`SSH_AUTH_SOCK=${m.target}`);
      return [{ type: 'bind', source: socket, target: posix.resolve('/', m.target), readonly: false }];
    }
  }
}

/**
 * A bind mount from the build context shows the context as the build sees it: `.dockerignore`
 * applied, and nothing the step's key does not hold (keyMount hashes the same item list). The
 * item's files are laid out in a scratch dir beneath its fd, hard-linked to the context (a
 * read-only mount; the step cannot change them) or copied for a read-write one, whose writes
 * are thrown away.
 */
async function contextView(
  ctx: StepContext,
  step: RunStep,
  source: string,
  readwrite: boolean,
  tmp: string,
  target: string,
): Promise<string> {
  const match = (await ctx.opts.context.match(source || '.'))[0];
  if (!match) throw new BuildError(`${where(step)}: --mount source "${source}" not found in the build context`);
  // A directory's files as the key lists them (names that are not UTF-8 included, surrogate-escaped).
  const files =
    match.kind === 'dir'
      ? ctx.opts.context
          .treeFiles(match, undefined)
          .map((t) => ({ ...t, host: t.rel ? `${match.abs}/${t.rel}` : match.abs, mtime: new Date(t.mtimeMs) }))
      : (await fromContext(ctx, source || '.', step))[0].files;
  const dir = join(tmp, `bind-${createHash('sha256').update(target).digest('hex').slice(0, 8)}`);
  await fsp.mkdir(dir, { mode: 0o700 });
  testStop('context-read');
  const tree = new Beneath(dir);
  // The context's files are opened beneath its fd (never through a symlink put there since the listing), checked to
  // be the regular files the key hashed, and linked or copied from that fd.
  const reader = new BeneathReader(encodeName);
  try {
    const dirs: [string, Date][] = [];
    for (const f of files) {
      const rel = f.rel === '' ? 'item' : `item/${f.rel}`;
      if (f.kind === 'dir') {
        tree.mkdir(rel, f.mode, 0, 0);
        dirs.push([rel, f.mtime]);
      } else if (f.kind === 'symlink') {
        tree.symlink(rel, f.linkname!, 0, 0, f.mtime);
      } else {
        const what = f.rel === '' ? match.rel || '.' : posix.join(match.rel, f.rel);
        const fd = reader.open(ctx.opts.context.dir, f.host, what, f.ino);
        try {
          if (readwrite) tree.writeFile(rel, { copyOf: fd }, { mode: f.mode, uid: 0, gid: 0, mtime: f.mtime });
          else {
            try {
              tree.linkFd(rel, fd);
            } catch (e) {
              if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
              tree.writeFile(rel, { copyOf: fd }, { mode: f.mode, uid: 0, gid: 0, mtime: f.mtime });
            }
          }
        } finally {
          closeSync(fd);
        }
      }
    }
    for (const [rel, t] of dirs.reverse()) tree.setDirTimes(rel, t);
  } catch (e) {
    if (e instanceof BuildError) throw e;
    throw new BuildError(`${where(step)}: --mount source "${source}": ${(e as Error).message}`);
  } finally {
    reader.close();
    tree.close();
  }
  return join(dir, 'item');
}
