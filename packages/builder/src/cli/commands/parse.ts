// `tsbuild parse [-f FILE] [--format json|buildkit]`: the instruction graph, or BuildKit's dump.
import { promises as fsp } from 'node:fs';
import { resolve } from 'node:path';
import { buildGraph, dumpBuildkit, parse, DockerfileError, formatError } from '@tsbuild/parser';
import { buildArgs, list, parseArgs, readStdin, str } from '../args.js';
import { flagsOf } from '../flags.js';
import { BuildError, UsageError } from '../../errors.js';

export async function parseCommand(argv: string[]): Promise<number> {
  const p = parseArgs(argv, flagsOf('parse'));
  const format = str(p, 'format') ?? 'json';
  if (format !== 'json' && format !== 'buildkit') throw new UsageError(`--format: "${format}" is not json or buildkit`);
  if (p.positionals.length > 1)
    throw new UsageError('"tsbuild parse" takes at most one argument (a context directory)');
  const file = str(p, 'file') ?? (p.positionals[0] ? resolve(p.positionals[0], 'Dockerfile') : 'Dockerfile');
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await fsp.readFile(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read ${file}`);
  }
  const name = file === '-' ? '<stdin>' : file;
  try {
    const df = parse(text, { file: name });
    if (format === 'buildkit') {
      process.stdout.write(dumpBuildkit(df) + '\n');
      return 0;
    }
    const graph = buildGraph(df, { file: name, buildArgs: buildArgs(list(p, 'build-arg')), target: str(p, 'target') });
    process.stdout.write(JSON.stringify(graph, null, 2) + '\n');
    return 0;
  } catch (e) {
    if (e instanceof DockerfileError) throw new BuildError(formatError(e), 2);
    throw e;
  }
}
