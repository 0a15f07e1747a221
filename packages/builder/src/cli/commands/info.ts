// `tsbuild info [--format json]`: what a user debugging a CI runner needs to know about how tsbuild
// runs here: rootless or not, the id mappings, the store, overlay, network and limits.
import { sandboxInfo, type IdMapping } from '@tsbuild/sandbox';
import { parseArgs, str } from '../args.js';
import { flagsOf } from '../flags.js';
import { UsageError } from '../../errors.js';
import { storeRoot } from '../root.js';

function maps(m: IdMapping[]): string {
  return m.map((x) => `${x.inside}-${x.inside + x.count - 1} -> ${x.outside}-${x.outside + x.count - 1}`).join(', ');
}

export async function infoCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('info'));
  const format = str(p, 'format');
  if (format !== undefined && format !== 'json') throw new UsageError(`--format: "${format}" is not json`);
  if (p.positionals.length) throw new UsageError('"tsbuild info" takes no arguments');
  const info = { store: storeRoot(str(p, 'root')), ...sandboxInfo() };
  if (format === 'json') {
    process.stdout.write(JSON.stringify(info, null, 2) + '\n');
    return 0;
  }
  const ids = {
    host: 'none (running as root: ids inside are the host ids)',
    ranges: 'subordinate ranges from /etc/subuid and /etc/subgid',
    single: 'single: only your own uid and gid (files of other owners cannot be made; see "Rootless" in the README)',
  }[info.idMapping];
  const lines: [string, string][] = [
    ['Rootless', info.rootless ? `yes (host uid ${info.hostUid}, gid ${info.hostGid} are root inside)` : 'no'],
    ['ID mapping', ids],
    ...(info.rootless
      ? ([
          ['  uids', maps(info.uidMap)],
          ['  gids', maps(info.gidMap)],
        ] as [string, string][])
      : []),
    ['Store', info.store],
    ['State dir', info.stateDir],
    ['Kernel', info.kernel],
    ['Overlay', `${info.overlay.mode}${info.overlay.note ? ` (${info.overlay.note})` : ''}`],
    [
      'Network',
      `default: private, via ${info.network.helper ?? 'no helper'}` +
        (info.network.note ? ` (${info.network.note})` : ''),
    ],
    [
      'Limits',
      info.limits.available.length
        ? `cgroup ${info.limits.cgroup}: ${info.limits.available.join(', ')}`
        : `none${info.limits.note && !info.limits.delegated ? ` (${info.limits.note})` : ''}`,
    ],
    ...(info.limits.delegated
      ? ([
          ['  delegated', info.limits.delegated.dir],
          ['  ctrls', info.limits.delegated.controllers.join(' ') || 'none'],
          ['  note', info.limits.note ?? ''],
        ] as [string, string][])
      : []),
  ];
  process.stdout.write(lines.map(([k, v]) => `${(k + ':').padEnd(13)}${v}\n`).join(''));
  return 0;
}
