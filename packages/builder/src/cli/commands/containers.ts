// Container commands besides run: ps, start, stop, kill, rm, logs, inspect (containers, and images
// through the images command), and `container SUBCOMMAND` for all of them; exec, commit and volume
// are in their own files. They parse arguments and print; @tsbuild/containers does the work.
import { constants } from 'node:os';
import type { Store } from '@tsbuild/layerstore';
import {
  ContainerError,
  findDoc,
  isRunning,
  killContainer,
  listContainers,
  refresh,
  removeContainer,
  runContainer,
  startDetached,
  stopContainer,
  tryFindDoc,
  copyLogs,
  type ContainerDoc,
} from '@tsbuild/containers';
import { bool, parseArgs, str } from '../args.js';
import { UsageError } from '../../errors.js';
import { openStore } from '../root.js';
import { ago, since, table } from '../table.js';
import { inspectCommand } from './images.js';
import { parseTemplate, render } from '../template.js';
import { attached, exitStatus } from './run.js';
import { guarded } from './guarded.js';
import { flagsOf } from '../flags.js';
import { describeError } from '../report.js';

import { execCommand } from './exec.js';
import { commitCommand } from './commit.js';

// main.ts loads every container command from here.
export { execCommand, commitCommand };
export { volumeCommand } from './volume.js';

export function statusText(d: ContainerDoc): string {
  const st = d.State;
  if (st.Status === 'running') return `Up ${since(st.StartedAt)}`;
  if (st.Status === 'created') return 'Created';
  const code = st.ExitCode === null || st.ExitCode === undefined ? 'unknown' : String(st.ExitCode);
  return `Exited (${code}) ${ago(st.FinishedAt)}`;
}

export async function psCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('ps'));
  const format = str(p, 'format');
  // Not docker's templates (yet): a format tsbuild cannot apply is said, not ignored for the default table.
  if (format !== undefined && format !== 'json')
    throw new UsageError(`--format: "${format}" is not json (tsbuild ps --format takes json only)`);
  const store = await openStore(str(p, 'root'));
  const docs = await listContainers(store, { all: bool(p, 'all') });
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
      ago(d.Created),
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
  return forEach(store, p.positionals, (d) => killContainer(store, d, sig));
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
      const d = await refresh(store, await findDoc(store, p.positionals[0]));
      if (isRunning(d)) throw new ContainerError(`container ${d.Name} is already running`);
      const exit = await attached({ stdin: false, tty: d.Config.tty }, (io) => runContainer(store, d.Id, io));
      return exitStatus(exit);
    });
  }
  return forEach(store, p.positionals, async (d) => {
    const r = await refresh(store, d);
    if (isRunning(r)) return;
    await startDetached(store, r.Id);
  });
}

/**
 * --tail as docker takes it: a number of lines (a sign allowed), all, or a negative number for all (undefined).
 * Docker takes any other word as all too; here it is said to be wrong.
 */
function tailFlag(v: string | undefined): number | undefined {
  if (v === undefined || v === 'all') return undefined;
  if (!/^[+-]?\d+$/.test(v)) throw new UsageError(`--tail: "${v}" is not a number of lines or all`);
  const n = Number(v);
  return n < 0 ? undefined : n;
}

export async function logsCommand(argv: string[], signal: AbortSignal): Promise<number> {
  const p = parseArgs(argv, flagsOf('logs'));
  if (p.positionals.length !== 1) throw new UsageError('"tsbuild logs" requires exactly 1 argument: CONTAINER');
  const tail = tailFlag(str(p, 'tail'));
  const store = await openStore(str(p, 'root'));
  return guarded(async () => {
    const d = await findDoc(store, p.positionals[0]);
    await copyLogs(store, d, process.stdout, { follow: bool(p, 'follow'), tail, signal });
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
  const p = parseArgs(argv, flagsOf('inspect'));
  if (p.positionals.length === 0)
    throw new UsageError('"tsbuild container inspect" requires at least 1 argument: CONTAINER');
  const format = str(p, 'format');
  const template = format === undefined || format === 'json' ? undefined : parseTemplate(format);
  const store = await openStore(str(p, 'root'));
  return guarded(async () => {
    const out = [];
    for (const ref of p.positionals) out.push(containerJSON(await refresh(store, await findDoc(store, ref))));
    if (template) process.stdout.write(out.map((doc) => render(template, doc) + '\n').join(''));
    else process.stdout.write(JSON.stringify(out.length === 1 ? out[0] : out, null, 2) + '\n');
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
    const first = p.positionals[0];
    const isImage = await store.images.get(first).catch(() => undefined);
    if (!isImage && (await tryFindDoc(store, first))) return containerInspectCommand(rest);
  }
  void signal;
  return inspectCommand(rest);
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
