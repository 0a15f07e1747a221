// `tsbuild exec CONTAINER COMMAND...`: flags parsed here, the process run by @tsbuild/containers.
import { execDetached, execInContainer, findDoc } from '@tsbuild/containers';
import { bool, list, parseArgs, str } from '../args.js';
import { UsageError } from '../../errors.js';
import { openStore } from '../root.js';
import { attached, exitStatus, workdirFlag } from './run.js';
import { report } from '../report.js';
import { flagsOf } from '../flags.js';

export async function execCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('exec'), { stopAtFirstPositional: true });
  const [ref, ...cmd] = p.positionals;
  if (!ref || cmd.length === 0)
    throw new UsageError('"tsbuild exec" requires at least 2 arguments: CONTAINER COMMAND [ARG...]');
  const workdir = workdirFlag(p);
  const store = await openStore(str(p, 'root'));
  try {
    const d = await findDoc(store, ref);
    const tty = bool(p, 'tty');
    if (bool(p, 'detach')) {
      await execDetached(store, d, { argv: cmd, env: list(p, 'env'), user: str(p, 'user'), workdir, tty });
      return 0;
    }
    const exit = await attached({ stdin: bool(p, 'interactive'), tty }, (io) =>
      execInContainer(store, d, {
        argv: cmd,
        env: list(p, 'env'),
        user: str(p, 'user'),
        workdir,
        tty,
        ...io,
      }),
    );
    // docker exec: 126 for a command that could not start, not found (127 to run) included.
    return exitStatus(exit.startError ? { ...exit, code: 126 } : exit);
  } catch (e) {
    // docker exec -d: 1 for every failure, the daemon's and the process's alike.
    if (bool(p, 'detach')) return report(e, 'exec', 'tsbuild').then(() => 1);
    return report(e, 'exec', 'exec');
  }
}
