// `tsbuild build --check`: the build checks without building (docker build --check). Findings go to
// stdout, one `FILE:LINE:COL: Rule: message` line each; the exit status is 1 when any fired.
import { baseImages, parse, DockerfileError, formatError, formatLintWarning } from '@tsbuild/parser';
import { hostPlatform } from '@tsbuild/layerstore';
import { runChecks } from '../solver/build.js';
import { openStore } from './root.js';
import { BuildError } from '../errors.js';

export async function checkDockerfile(opts: {
  root: string | undefined;
  dockerfilePath: string;
  dockerfileText: string;
  buildArgs: Record<string, string>;
}): Promise<number> {
  let df;
  let refs: string[];
  const platform = hostPlatform();
  const platformString = `${platform.os}/${platform.architecture}`;
  try {
    df = parse(opts.dockerfileText, { file: opts.dockerfilePath });
    refs = baseImages(df, {
      file: opts.dockerfilePath,
      buildArgs: opts.buildArgs,
      buildPlatform: platformString,
      targetPlatform: platformString,
    });
  } catch (e) {
    if (e instanceof DockerfileError) throw new BuildError(formatError(e), 2);
    throw e;
  }
  // Base images' Env (for UndefinedVar) from the store only: a check pulls nothing. A base that is not
  // there leaves UndefinedVar quiet in its stages rather than guess what it defines.
  const store = await openStore(opts.root);
  const env = new Map<string, string[] | undefined>();
  for (const ref of refs) {
    const img = await store.images.get(ref).catch(() => undefined);
    env.set(ref, img?.config.config?.Env ?? (img ? [] : undefined));
  }
  const { warnings } = runChecks(df, opts.buildArgs, (ref) => env.get(ref));
  for (const w of warnings) process.stdout.write(`${formatLintWarning(w)} (${w.url})\n`);
  const n = warnings.length;
  process.stderr.write(
    n
      ? `Check complete, ${n} warning${n === 1 ? ' has' : 's have'} been found!\n`
      : 'Check complete, no warnings found.\n',
  );
  return n ? 1 : 0;
}
