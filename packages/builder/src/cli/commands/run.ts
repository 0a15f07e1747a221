// `tsbuild run`: a process in the sandbox over an image's layers with a throwaway writable
// layer. Entrypoint and Cmd are joined as docker joins them.
import { promises as fsp } from 'node:fs';
import { join, posix } from 'node:path';
import { run as sandboxRun } from '@tsbuild/sandbox';
import { UsageError, bool, list, parseArgs, str } from '../args.js';
import { openStore } from '../root.js';
import { Filesystems } from '../../build/filesystems.js';
import { resolveUser } from '../../fs/users.js';
import { DefaultPath, setEnv } from '../../build/config.js';
import { BuildError } from '../../build/errors.js';

export async function runCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const p = parseArgs(
    argv,
    [
      { name: 'root', kind: 'string' },
      { name: 'rm', kind: 'bool' },
      { name: 'interactive', short: 'i', kind: 'bool' },
      { name: 'tty', short: 't', kind: 'bool' },
      { name: 'env', short: 'e', kind: 'list' },
      { name: 'workdir', short: 'w', kind: 'string' },
      { name: 'user', short: 'u', kind: 'string' },
      { name: 'network', kind: 'string' },
      { name: 'hostname', kind: 'string' },
      { name: 'entrypoint', kind: 'string' },
      { name: 'name', kind: 'string' },
    ],
    { stopAtFirstPositional: true },
  );
  const [ref, ...cmd] = p.positionals;
  if (!ref) throw new UsageError('"tsbuild run" requires at least 1 argument: IMAGE [COMMAND] [ARG...]');
  const network = str(p, 'network') ?? 'default';
  if (!['default', 'none', 'host'].includes(network)) throw new UsageError(`--network: "${network}" is not one of default, none, host`);
  const store = await openStore(str(p, 'root'));
  const image = await store.images.get(ref);
  if (!image) throw new BuildError(`Unable to find image '${ref}' in the store (${store.root})`, 1);
  const cfg = image.config.config ?? {};

  const epFlag = str(p, 'entrypoint');
  const entrypoint = epFlag !== undefined ? (epFlag === '' ? [] : [epFlag]) : cfg.Entrypoint ?? [];
  const args = cmd.length ? cmd : epFlag !== undefined ? [] : cfg.Cmd ?? [];
  const full = [...entrypoint, ...args];
  if (full.length === 0) throw new BuildError('No command specified', 1);

  let env = cfg.Env ?? [`PATH=${DefaultPath}`];
  for (const e of list(p, 'env')) {
    const eq = e.indexOf('=');
    if (eq < 0) {
      if (process.env[e] !== undefined) env = setEnv(env, e, process.env[e]!);
    } else env = setEnv(env, e.slice(0, eq), e.slice(eq + 1));
  }
  const fs = new Filesystems(store);
  const lowerdirs = await fs.lowerdirs(image.layers);
  const view = await fs.view(image.layers);
  const who = await resolveUser(view, str(p, 'user') ?? cfg.User).catch((e) => {
    throw new BuildError((e as Error).message);
  });
  const cwd = posix.resolve('/', str(p, 'workdir') ?? (cfg.WorkingDir || '/'));

  const dir = await store.tempDir('ctr-');
  await fsp.mkdir(join(dir, 'upper'));
  await fsp.mkdir(join(dir, 'work'));
  try {
    const exit = await sandboxRun({
      root: { lowerdirs, upperdir: join(dir, 'upper'), workdir: join(dir, 'work') },
      argv: full,
      env,
      cwd,
      uid: who.uid,
      gid: who.gid,
      additionalGids: who.additionalGids,
      hostname: str(p, 'hostname') ?? dir.slice(-12).replace(/[^a-z0-9]/gi, '0'),
      network: network === 'none' ? 'none' : 'host',
      stdin: bool(p, 'interactive') ? process.stdin : 'ignore',
      stdout: process.stdout,
      stderr: process.stderr,
      tty: bool(p, 'tty'),
      signal,
    });
    if (exit.startError) process.stderr.write(`tsbuild: ${exit.startError}\n`);
    return exit.code;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
