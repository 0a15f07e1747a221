// RUN: the command runs in the sandbox over the stage's layers; its upperdir is the diff.
// ARG values reach the command's environment but never the image config; secrets reach it
// as files or env for this run only and never the cache key's content or a layer.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { RunStep } from '@tsbuild/parser';
import { resolveUser, run as sandboxRun, withHome, type Mount } from '@tsbuild/sandbox';
import type { KeyBuilder } from '../cachekey.js';
import type { Exec, StepContext } from './context.js';
import { DefaultPath } from '../../image/config.js';
import { BuildError, where } from '../../errors.js';
import { commitDiff, scratchDir } from './commit.js';
import { keyMount, prepareMount } from './run-mounts.js';

const TailLines = 20;

export async function runStep(ctx: StepContext, step: RunStep, kb: KeyBuilder): Promise<Exec> {
  const config = ctx.state.config.image.config ?? {};
  const network = step.network ?? ctx.opts.network;
  // Refused before the cache is asked: a cached step must not hide a Dockerfile that asks for it.
  if (network === 'host' && !ctx.opts.allowNetworkHost)
    throw new BuildError(
      `${where(step)}: RUN --network=host needs the network.host entitlement: build with --allow network.host`,
      2,
    );
  kb.add(
    'instruction',
    JSON.stringify({ argv: step.argv, files: step.files, network, security: step.security ?? 'sandbox' }),
  );
  const keyed = runEnv(step, config.Env ?? step.env);
  // Name each variable for what it is, so --explain can say "build arg V" or "ENV V".
  const fromImage = new Set((config.Env ?? step.env).map((e) => e.slice(0, e.indexOf('='))));
  for (const e of keyed) {
    const eq = e.indexOf('=');
    const name = e.slice(0, eq);
    kb.add(`${fromImage.has(name) ? 'env' : 'arg'}:${name}`, e.slice(eq + 1));
  }
  // The proxy build args go over all of it, left out of the key (as BuildKit's exec op): a build behind
  // another proxy reuses the cache.
  const env = withProxy(keyed, step.proxy ?? []);
  kb.add('user', config.User ?? '').add('workdir', config.WorkingDir || '/');
  // As in BuildKit, where they are part of the exec op: a step with other hosts or limits is another step.
  const settings = ctx.opts.run;
  if (settings?.extraHosts.length) kb.add('add-host', JSON.stringify(settings.extraHosts));
  if (settings?.rlimits.length) kb.add('ulimit', JSON.stringify(settings.rlimits));
  if (settings?.shmSize !== undefined) kb.add('shm-size', String(settings.shmSize));
  for (const m of step.mounts) await keyMount(ctx, step, m, kb);

  return async (handle) => {
    if (step.security === 'insecure')
      throw new BuildError(
        `${where(step)}: RUN --security=insecure is not allowed (tsbuild never grants full privileges to a build step)`,
        2,
      );
    // Started now, awaited at the sandbox: the build's first RUN makes it while the step's layers are readied.
    const netnsReady = network === 'default' ? ctx.opts.privateNetwork() : undefined;
    netnsReady?.catch(() => {
      /* awaited below */
    });
    const lowerdirs = await ctx.fs.lowerdirs(ctx.state.layers);
    const view = ctx.fs.viewOf(lowerdirs);
    const who = await resolveUser(view, config.User).catch((e) => {
      throw new BuildError(`${where(step)}: ${(e as Error).message}`);
    });
    const tmp = await scratchDir(ctx, 'run-');
    // The step's active snapshot: the stage's layers (some maybe still being written) and a fresh upperdir.
    const active = await ctx.opts.store.snapshotter.prepare(tmp.path, { lowerdirs });
    const releases: (() => Promise<void>)[] = [];
    try {
      const mounts: Mount[] = [];
      const extraEnv: string[] = [];
      for (const m of step.mounts) mounts.push(...(await prepareMount(ctx, step, m, tmp.path, releases, extraEnv)));
      for (const [i, f] of step.files.entries()) {
        const host = join(tmp.path, `file-${i}`);
        await fsp.writeFile(host, f.content, { mode: f.mode });
        await fsp.chmod(host, f.mode);
        mounts.push({ type: 'bind', source: host, target: f.path, readonly: true });
      }
      const tail: string[] = [];
      const out = lineWriter((line) => {
        handle.log(line);
        tail.push(line);
        if (tail.length > TailLines) tail.shift();
      });
      const netns = await netnsReady?.catch((e) => {
        throw new BuildError(`${where(step)}: ${(e as Error).message.replace(/^sandbox: /, '')}`);
      });
      const exit = await sandboxRun({
        // The upperdir is read into a layer and the workdir removed: no sync at unmount.
        root: { lowerdirs: active.lowerdirs, upperdir: active.upperdir, workdir: active.workdir, volatile: true },
        argv: step.argv,
        env: withHome([...env, ...extraEnv], who.home),
        cwd: config.WorkingDir || '/',
        uid: who.uid,
        gid: who.gid,
        additionalGids: who.additionalGids,
        hostname: 'tsbuild',
        network: network === 'default' ? 'private' : network,
        netns,
        mounts,
        extraHosts: settings?.extraHosts,
        rlimits: settings?.rlimits,
        shmSize: settings?.shmSize,
        stdin: 'ignore',
        stdout: out,
        stderr: out,
        signal: ctx.opts.signal,
        // The sandbox's PID 1 exists: from here this thread only waits for the command.
        onStart: () => ctx.stages.commandStarted(),
      });
      out.end();
      await new Promise((r) => out.once('finish', r));
      if (ctx.opts.signal.aborted) throw ctx.opts.signal.reason ?? new Error('aborted');
      if (exit.code !== 0 || exit.startError) {
        const cmd = step.argv.join(' ');
        const why = exit.startError
          ? exit.startError
          : exit.oomKilled
            ? 'out of memory (killed)'
            : exit.signal
              ? `killed by ${exit.signal}`
              : `exit code: ${exit.code}`;
        throw new BuildError(`${where(step)}: process "${cmd}" did not complete successfully: ${why}`, 1, tail);
      }
      // The workdir goes with the scratch dir (tmp.cleanup below), once the diff is handed over.
      return await commitDiff(ctx, { dir: active.upperdir }, true);
    } finally {
      for (const r of releases.reverse()) await r().catch(() => {});
      await tmp.cleanup();
    }
  };
}

/** Build args first, so that ENV wins over an ARG of the same name, as in Docker; PATH always set. */
function runEnv(step: RunStep, imageEnv: string[]): string[] {
  const map = new Map<string, string>();
  for (const e of [...step.args, ...imageEnv]) {
    const eq = e.indexOf('=');
    if (eq > 0) map.set(e.slice(0, eq), e.slice(eq + 1));
  }
  if (!map.has('PATH')) map.set('PATH', DefaultPath);
  return [...map].map(([k, v]) => `${k}=${v}`);
}
function withProxy(env: string[], proxy: string[]): string[] {
  if (proxy.length === 0) return env;
  const names = new Set(proxy.map((e) => e.slice(0, e.indexOf('='))));
  return [...env.filter((e) => !names.has(e.slice(0, e.indexOf('=')))), ...proxy];
}
/** Splits a byte stream into lines for progress and the failure tail. */
function lineWriter(onLine: (line: string) => void): Writable {
  let rest = '';
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      rest += chunk.toString('utf8');
      let nl: number;
      while ((nl = rest.indexOf('\n')) >= 0) {
        onLine(rest.slice(0, nl).replace(/\r$/, ''));
        rest = rest.slice(nl + 1);
      }
      if (rest.length > 64 * 1024) {
        onLine(rest);
        rest = '';
      }
      cb();
    },
    final(cb) {
      if (rest) onLine(rest);
      cb();
    },
  });
}
