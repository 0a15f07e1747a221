// Container commands besides run: ps, start, stop, kill, rm, logs, inspect (containers, and images
// through the images command), exec, commit, volume, and `container SUBCOMMAND` for all of them.
import { createReadStream, promises as fsp } from 'node:fs';
import { constants } from 'node:os';
import { exec as sandboxExec } from '@tsbuild/sandbox';
import type { Store } from '@tsbuild/layerstore';
import { bool, list, parseArgs, str } from '../args.js';
import { flagsOf, rootFlag } from '../flags.js';
import { UsageError } from '../../errors.js';
import { openStore } from '../root.js';
import { describeError, errorLine } from '../report.js';
import { inspectCommand } from './images.js';
import { exitStatus, ownError, withSignalsForwarded } from './run.js';
import { RootView } from '../../rootfs/rootview.js';
import { Filesystems, isOpaque } from '../../rootfs/filesystems.js';
import { resolveUser, withHome } from '../../rootfs/users.js';
import { setEnv } from '../../image/config.js';
import {
  ContainerError,
  findDoc,
  isRunning,
  listDocs,
  refresh,
  tryFindDoc,
  type ContainerDoc,
} from '../../containers/state.js';
import { runContainer, signalContainer, startDetached, stopContainer } from '../../containers/runner.js';
import { removeContainer } from '../../containers/remove.js';
import { commitContainer } from '../../containers/commit.js';
import { ensureVolume, listVolumes, removeVolume, volumesInUse } from '../../containers/volumes.js';

/** A container command's failure goes to the CLI's one mapping (report.ts): `ERROR: message`, exit 1. */
function guarded(fn: () => Promise<number>): Promise<number> {
  return fn();
}

function ago(iso: string | undefined): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} second${s === 1 ? '' : 's'}`;
  if (s < 3600) return `${Math.round(s / 60)} minutes`;
  if (s < 86400) return `${Math.round(s / 3600)} hours`;
  return `${Math.round(s / 86400)} days`;
}

export function statusText(d: ContainerDoc): string {
  const st = d.State;
  if (st.Status === 'running') return `Up ${ago(st.StartedAt)}`;
  if (st.Status === 'created') return 'Created';
  const code = st.ExitCode === null || st.ExitCode === undefined ? 'unknown' : String(st.ExitCode);
  return `Exited (${code}) ${ago(st.FinishedAt)} ago`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3)))
          .join('')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

export async function psCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('ps'));
  const store = await openStore(str(p, 'root'));
  const docs: ContainerDoc[] = [];
  for (const d of await listDocs(store)) {
    const r = await refresh(store, d);
    if (bool(p, 'all') || r.State.Status === 'running') docs.push(r);
  }
  if (bool(p, 'quiet')) {
    for (const d of docs) process.stdout.write((bool(p, 'no-trunc') ? d.Id : d.Id.slice(0, 12)) + '\n');
    return 0;
  }
  if (str(p, 'format') === 'json') {
    for (const d of docs)
      process.stdout.write(
        JSON.stringify({
          ID: d.Id,
          Names: d.Name,
          Image: d.Config.image.ref,
          Command: d.Config.argv,
          State: d.State.Status,
          ExitCode: d.State.ExitCode,
          Status: statusText(d),
        }) + '\n',
      );
    return 0;
  }
  const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'NAMES']];
  for (const d of docs) {
    let cmd = d.Config.argv.join(' ');
    if (!bool(p, 'no-trunc') && cmd.length > 20) cmd = cmd.slice(0, 19) + '…';
    rows.push([
      bool(p, 'no-trunc') ? d.Id : d.Id.slice(0, 12),
      d.Config.image.ref,
      `"${cmd}"`,
      `${ago(d.Created)} ago`,
      statusText(d),
      d.Name,
    ]);
  }
  process.stdout.write(table(rows));
  return 0;
}

function needOne(p: { positionals: string[] }, cmd: string): void {
  if (p.positionals.length === 0) throw new UsageError(`"tsbuild ${cmd}" requires at least 1 argument: CONTAINER...`);
}

async function forEach(store: Store, refs: string[], fn: (d: ContainerDoc) => Promise<void>): Promise<number> {
  let failed = 0;
  for (const ref of refs) {
    try {
      await fn(await findDoc(store, ref));
      process.stdout.write(ref + '\n');
    } catch (e) {
      if (!(e instanceof ContainerError)) throw e;
      process.stderr.write(describeError(e, 'container').lines.join('\n') + '\n');
      failed++;
    }
  }
  return failed ? 1 : 0;
}

export async function stopCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('stop'));
  needOne(p, 'stop');
  const t = str(p, 'time') ?? '10';
  if (!/^\d+$/.test(t)) throw new UsageError(`--time: "${t}" is not a number of seconds`);
  const sig = parseSignal(str(p, 'signal') ?? 'SIGTERM');
  const store = await openStore(str(p, 'root'));
  return forEach(store, p.positionals, async (d) => {
    await stopContainer(store, d, Number(t), sig);
  });
}

function parseSignal(s: string): NodeJS.Signals | number {
  if (/^\d+$/.test(s)) return Number(s);
  const name = (s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`) as NodeJS.Signals;
  if (!(name in constants.signals)) throw new UsageError(`invalid signal: ${s}`);
  return name;
}

export async function killCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('kill'));
  needOne(p, 'kill');
  const sig = parseSignal(str(p, 'signal') ?? 'SIGKILL');
  const store = await openStore(str(p, 'root'));
  return forEach(store, p.positionals, async (d) => {
    const r = await refresh(store, d);
    if (!isRunning(r)) throw new ContainerError(`container ${r.Name} is not running`);
    signalContainer(r, sig);
    if (sig === 'SIGKILL' || sig === 9) await stopContainer(store, r, 5, 'SIGKILL');
  });
}

export async function rmCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('rm'));
  needOne(p, 'rm');
  const store = await openStore(str(p, 'root'));
  return forEach(store, p.positionals, (d) =>
    removeContainer(store, d.Id, { force: bool(p, 'force'), volumes: bool(p, 'volumes') }),
  );
}

export async function startCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('start'));
  needOne(p, 'start');
  const store = await openStore(str(p, 'root'), 'start');
  if (bool(p, 'attach')) {
    if (p.positionals.length !== 1) throw new UsageError('"tsbuild start -a" takes exactly one container');
    return guarded(async () => {
      const d = await refresh(store, await findDoc(store, p.positionals[0]!));
      if (isRunning(d)) throw new ContainerError(`container ${d.Name} is already running`);
      let pid: number | undefined;
      const exit = await withSignalsForwarded(
        () => pid,
        () =>
          runContainer(store, d.Id, {
            stdin: 'ignore',
            stdout: 'inherit',
            stderr: 'inherit',
            newSession: !d.Config.tty,
            onStart: (x) => {
              pid = x;
            },
          }),
      );
      return exitStatus(exit);
    });
  }
  return forEach(store, p.positionals, async (d) => {
    const r = await refresh(store, d);
    if (isRunning(r)) return;
    const after = await startDetached(store, r.Id);
    if (after.State.Status === 'exited' && after.State.Error) throw new ContainerError(after.State.Error);
  });
}

export async function logsCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('logs'));
  if (p.positionals.length !== 1) throw new UsageError('"tsbuild logs" requires exactly 1 argument: CONTAINER');
  const store = await openStore(str(p, 'root'));
  return guarded(async () => {
    const d = await findDoc(store, p.positionals[0]!);
    let pos = 0;
    const dump = async () => {
      let size = 0;
      try {
        size = (await fsp.stat(d.LogPath)).size;
      } catch {
        return;
      }
      if (size <= pos) return;
      await new Promise<void>((res, rej) => {
        const s = createReadStream(d.LogPath, { start: pos, end: size - 1 });
        s.on('error', rej);
        s.on('end', () => res());
        s.pipe(process.stdout, { end: false });
      });
      pos = size;
    };
    await dump();
    if (bool(p, 'follow')) {
      for (;;) {
        const r = await refresh(store, await findDoc(store, d.Id));
        await dump();
        if (!isRunning(r)) break;
        await new Promise((res) => setTimeout(res, 200));
      }
      await dump();
    }
    return 0;
  });
}

function containerJSON(d: ContainerDoc): unknown {
  return {
    ...d,
    State: { ...d.State, Running: isRunning(d), ExitCode: d.State.ExitCode === undefined ? null : d.State.ExitCode },
  };
}

export async function containerInspectCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, [rootFlag]);
  if (p.positionals.length === 0)
    throw new UsageError('"tsbuild container inspect" requires at least 1 argument: CONTAINER');
  const store = await openStore(str(p, 'root'));
  return guarded(async () => {
    const out = [];
    for (const ref of p.positionals) out.push(containerJSON(await refresh(store, await findDoc(store, ref))));
    process.stdout.write(JSON.stringify(out.length === 1 ? out[0] : out, null, 2) + '\n');
    return 0;
  });
}

/** `tsbuild inspect REF`: an image when REF names one, else a container. */
export async function inspectAnyCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const p = parseArgs(argv, flagsOf('inspect'));
  const type = str(p, 'type');
  const rest = argv.filter((a, i) => !(a === '--type' || a.startsWith('--type=') || argv[i - 1] === '--type'));
  if (type === 'image') return inspectCommand(rest);
  if (type === 'container') return containerInspectCommand(rest);
  if (p.positionals.length > 0) {
    const store = await openStore(str(p, 'root'));
    const first = p.positionals[0]!;
    const isImage = await store.images.get(first).catch(() => undefined);
    if (!isImage && (await tryFindDoc(store, first))) return containerInspectCommand(rest);
  }
  void signal;
  return inspectCommand(rest);
}

export async function execCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('exec'), { stopAtFirstPositional: true });
  const [ref, ...cmd] = p.positionals;
  if (!ref || cmd.length === 0)
    throw new UsageError('"tsbuild exec" requires at least 2 arguments: CONTAINER COMMAND [ARG...]');
  const store = await openStore(str(p, 'root'));
  try {
    const d = await refresh(store, await findDoc(store, ref));
    if (!isRunning(d)) throw new ContainerError(`container ${d.Name} is not running`);
    let env = d.Config.env;
    for (const e of list(p, 'env')) {
      const eq = e.indexOf('=');
      if (eq < 0) {
        if (process.env[e] !== undefined) env = setEnv(env, e, process.env[e]!);
      } else env = setEnv(env, e.slice(0, eq), e.slice(eq + 1));
    }
    let who = { uid: d.Config.uid, gid: d.Config.gid, additionalGids: d.Config.additionalGids, home: d.Config.home };
    const user = str(p, 'user');
    if (user !== undefined) {
      // Users the container itself added count: resolve in its own view (upper dir over the image).
      const image = await store.images.get(d.Image);
      const lowers = image ? await new Filesystems(store).lowerdirs(image.layers) : [];
      const r = await resolveUser(new RootView([d.UpperDir, ...lowers], isOpaque), user).catch((e) => {
        throw new ContainerError((e as Error).message);
      });
      who = { uid: r.uid, gid: r.gid, additionalGids: r.additionalGids ?? [], home: r.home };
    }
    const tty = bool(p, 'tty');
    let pid: number | undefined;
    const exit = await withSignalsForwarded(
      () => pid,
      () =>
        sandboxExec({
          pid: d.State.Pid!,
          argv: cmd,
          env: who.home === undefined ? env : withHome(env, who.home),
          cwd: str(p, 'workdir') ?? d.Config.cwd,
          uid: who.uid,
          gid: who.gid,
          additionalGids: who.additionalGids,
          keepNetRaw: d.Config.network === 'none',
          tty,
          stdin: bool(p, 'interactive') ? 'inherit' : 'ignore',
          stdout: 'inherit',
          stderr: 'inherit',
          newSession: !tty,
          onStart: (x) => {
            pid = x;
          },
        }),
    );
    return exitStatus(exit);
  } catch (e) {
    return ownError(e, 'exec');
  }
}

export async function commitCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('commit'));
  if (p.positionals.length < 1 || p.positionals.length > 2)
    throw new UsageError('"tsbuild commit" requires 1 or 2 arguments: CONTAINER [REPOSITORY[:TAG]]');
  const store = await openStore(str(p, 'root'), 'commit');
  return guarded(async () => {
    const d = await findDoc(store, p.positionals[0]!);
    const image = await commitContainer(store, d, {
      changes: list(p, 'change'),
      message: str(p, 'message'),
      author: str(p, 'author'),
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

export async function volumeCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const store = async (p: { flags: Map<string, unknown> }) => openStore(p.flags.get('root') as string | undefined);
  switch (sub) {
    case 'ls':
    case 'list': {
      const p = parseArgs(rest, flagsOf('volume', 'ls'));
      const vols = await listVolumes(await store(p));
      if (bool(p, 'quiet')) {
        for (const v of vols) process.stdout.write(v.Name + '\n');
        return 0;
      }
      process.stdout.write(table([['DRIVER', 'VOLUME NAME'], ...vols.map((v) => ['local', v.Name])]));
      return 0;
    }
    case 'create': {
      const p = parseArgs(rest, flagsOf('volume', 'create'));
      return guarded(async () => {
        const v = await ensureVolume(await store(p), p.positionals[0]);
        process.stdout.write(v.Name + '\n');
        return 0;
      });
    }
    case 'inspect': {
      const p = parseArgs(rest, flagsOf('volume', 'inspect'));
      const s = await store(p);
      const all = await listVolumes(s);
      const out = p.positionals.map((n) => all.find((v) => v.Name === n));
      if (out.some((v) => !v)) {
        process.stderr.write(errorLine(`No such volume: ${p.positionals[out.findIndex((v) => !v)]}`));
        return 1;
      }
      process.stdout.write(JSON.stringify(out.length === 1 ? out[0] : out, null, 2) + '\n');
      return 0;
    }
    case 'rm':
    case 'remove': {
      const p = parseArgs(rest, flagsOf('volume', 'rm'));
      if (p.positionals.length === 0)
        throw new UsageError('"tsbuild volume rm" requires at least 1 argument: VOLUME...');
      const s = await store(p);
      let failed = 0;
      for (const n of p.positionals) {
        try {
          await removeVolume(s, n, bool(p, 'force'));
          process.stdout.write(n + '\n');
        } catch (e) {
          process.stderr.write(describeError(e, 'volume rm').lines.join('\n') + '\n');
          failed++;
        }
      }
      return failed ? 1 : 0;
    }
    case 'prune': {
      const p = parseArgs(rest, flagsOf('volume', 'prune'));
      const s = await store(p);
      const used = await volumesInUse(s);
      for (const v of await listVolumes(s)) {
        if (used.has(v.Name) || (!v.Anonymous && !bool(p, 'all'))) continue;
        await removeVolume(s, v.Name, true);
        process.stdout.write(`Deleted: ${v.Name}\n`);
      }
      return 0;
    }
    default:
      throw new UsageError(`"tsbuild volume" needs a subcommand: ls, create, inspect, rm, prune`);
  }
}

/** `tsbuild container SUBCOMMAND`: the same commands under docker's management-command names. */
export async function containerCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const [sub, ...rest] = argv;
  const { runCommand } = await import('./run.js');
  const subs: Record<string, (a: string[], s: AbortSignal) => Promise<number>> = {
    ls: psCommand,
    ps: psCommand,
    list: psCommand,
    run: runCommand,
    start: startCommand,
    stop: stopCommand,
    kill: killCommand,
    rm: rmCommand,
    remove: rmCommand,
    logs: logsCommand,
    inspect: containerInspectCommand,
    exec: execCommand,
    commit: commitCommand,
  };
  const f = sub ? subs[sub] : undefined;
  if (!f) throw new UsageError(`"tsbuild container" needs a subcommand: ${Object.keys(subs).join(', ')}`);
  return f(rest, signal);
}
