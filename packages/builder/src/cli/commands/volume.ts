// `tsbuild volume ls|create|inspect|rm|prune`: named and anonymous volumes (@tsbuild/containers).
import { ensureVolume, listVolumes, pruneVolumes, removeVolume } from '@tsbuild/containers';
import { bool, parseArgs } from '../args.js';
import { UsageError } from '../../errors.js';
import { openStore } from '../root.js';
import { table } from '../table.js';
import { guarded } from './guarded.js';
import { flagsOf } from '../flags.js';
import { describeError, errorLine } from '../report.js';

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
      for (const name of await pruneVolumes(await store(p), { all: bool(p, 'all') }))
        process.stdout.write(`Deleted: ${name}\n`);
      return 0;
    }
    default:
      throw new UsageError(`"tsbuild volume" needs a subcommand: ls, create, inspect, rm, prune`);
  }
}
