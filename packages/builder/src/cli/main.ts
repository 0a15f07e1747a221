// The `tsbuild` command: dispatch; an error that ends a command goes to report.ts, the one place errors
// become messages and exit codes.
import { setMaxListeners } from 'node:events';
import { commandHelp, usage } from './help.js';
import { BuildError } from '../errors.js';
import { report } from './report.js';
import { takeDeferredCaCerts } from './deferred-ca.js';
import { trace } from '../trace.js';
import { adoptEarlyWalk, dropEarlyWalk, type EarlyWalk } from '../context/early.js';

type Command = (argv: string[], signal: AbortSignal) => Promise<number>;

// Each command's module is loaded when it runs: in the bundle, a module reached only through
// import() is initialised on first use, so a build does not set up (nor load the Node built-ins
// of) containers, registries and archives.
const build = () => import('./commands/build.js');
const images = () => import('./commands/images.js');
const ctr = () => import('./commands/containers.js');
const registry = () => import('./commands/registry.js');
const from =
  <M extends Record<K, Command>, K extends keyof M>(load: () => Promise<M>, key: K) =>
  async (): Promise<Command> =>
    (await load())[key];
const commands: Record<string, () => Promise<Command>> = {
  build: from(build, 'buildCommand'),
  parse: from(() => import('./commands/parse.js'), 'parseCommand'),
  run: from(() => import('./commands/run.js'), 'runCommand'),
  image: from(images, 'imageCommand'),
  images: from(images, 'imagesCommand'),
  history: from(images, 'historyCommand'),
  tag: from(images, 'tagCommand'),
  rmi: from(images, 'rmiCommand'),
  prune: from(images, 'pruneCommand'),
  check: from(images, 'checkCommand'),
  cache: from(() => import('./commands/cache.js'), 'cacheCommand'),
  save: from(images, 'saveCommand'),
  load: from(images, 'loadCommand'),
  pull: from(registry, 'pullCommand'),
  push: from(registry, 'pushCommand'),
  login: from(registry, 'loginCommand'),
  logout: from(registry, 'logoutCommand'),
  inspect: from(ctr, 'inspectAnyCommand'),
  ps: from(ctr, 'psCommand'),
  start: from(ctr, 'startCommand'),
  stop: from(ctr, 'stopCommand'),
  kill: from(ctr, 'killCommand'),
  rm: from(ctr, 'rmCommand'),
  logs: from(ctr, 'logsCommand'),
  exec: from(ctr, 'execCommand'),
  commit: from(ctr, 'commitCommand'),
  volume: from(ctr, 'volumeCommand'),
  container: from(ctr, 'containerCommand'),
  info: from(() => import('./commands/info.js'), 'infoCommand'),
};

// A reader that goes away (`tsbuild images | head -1`) is not an error of the command: what it
// still writes is dropped, and the exit status is the command's. Without a listener, Node turns
// EPIPE into an uncaught exception and a stack trace.
function toleratePipeClosed(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
}

/**
 * The one atomic write, for bin/tsbuild.cjs, which writes its code cache with it once the command is done (it runs
 * before the bundle loads, so it cannot import it).
 */
export { writeFileAtomic } from '@tsbuild/sys';

/** The commands main dispatches (each has its flag spec and help in flags.ts). */
export const commandNames = (): string[] => Object.keys(commands);

/** Whether argv runs a build: bin/tsbuild.cjs wants its code cache made by one (see there). */
export function isBuild(argv: string[]): boolean {
  const name = argv[0];
  if (name === undefined || ['--help', '-h', 'help', '--version', 'version'].includes(name)) return false;
  return name === 'build' || !Object.hasOwn(commands, name);
}

/**
 * Whether argv walks, hashes and packs what may be a large tree: a build, or a commit of a container's changes (the
 * walk and pack of a build's RUN step). bin/tsbuild.cjs sets V8's heap flags for these (see there).
 */
export function packsTrees(argv: string[]): boolean {
  return isBuild(argv) || argv[0] === 'commit' || (argv[0] === 'container' && argv[1] === 'commit');
}

/**
 * Runs the command. `early`: the context walk bin/tsbuild.cjs may have started for it (see there); a build
 * takes it if it is its own, and it is ended here if nothing did. `loaded`: called once the command's modules
 * (and the Node built-ins they import) are loaded, before it runs: bin/tsbuild.cjs sets a build's V8 flags
 * there, since V8 compiles every built-in loaded after a flag changed from source (see there).
 */
export async function main(argv: string[], early?: EarlyWalk, loaded?: () => void): Promise<number> {
  trace('CLI loaded');
  adoptEarlyWalk(early);
  try {
    return await dispatch(argv, loaded);
  } finally {
    await dropEarlyWalk();
  }
}

async function dispatch(argv: string[], loaded?: () => void): Promise<number> {
  toleratePipeClosed(process.stdout);
  toleratePipeClosed(process.stderr);
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(usage());
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === '--version' || argv[0] === 'version') {
    process.stdout.write('tsbuild 0.1.0\n');
    return 0;
  }
  await takeDeferredCaCerts();
  const name = argv[0];
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined;
  const rest = load ? argv.slice(1) : argv;

  const controller = new AbortController();
  // The command's one abort signal: every RUN running at once (parallel stages), every walker and the network
  // listen to it, and a dozen listeners is a normal build, not the leak Node's warning would print mid-progress.
  setMaxListeners(0, controller.signal);
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write(`\ntsbuild: ${sig === 'SIGINT' ? 'interrupted' : 'terminated'}, stopping...\n`);
    controller.abort(new BuildError('interrupted', 1));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (rest.includes('--help') || (rest.includes('-h') && name !== 'run' && name !== 'exec')) {
      process.stdout.write(load ? (commandHelp(name) ?? usage()) : commandHelp('build')!);
      return 0;
    }
    const command = await (load ?? commands.build)();
    trace(`${load ? name : 'build'}: loaded`);
    loaded?.();
    const code = await command(rest, controller.signal);
    return interrupted ? 130 : code;
  } catch (e) {
    if (interrupted) {
      process.stderr.write('tsbuild: stopped\n');
      return 130;
    }
    return await report(e, name);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
