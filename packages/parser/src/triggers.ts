// ONBUILD triggers are Dockerfile text that arrives from elsewhere (a base image's config, or a
// parent stage), so they are parsed again and held to the rules BuildKit sets for triggers.
import type { Instruction } from './ast.js';
import { DockerfileError } from './errors.js';
import { parse } from './parse.js';
import type { Location } from './types.js';

/** A trigger as it is stored in the image config: as written, heredoc bodies included. */
export function triggerText(node: Instruction): string {
  return node.original.replace(/^\s*ONBUILD\s*/i, '') + node.heredocs.map((h) => '\n' + h.content + h.name).join('');
}

/** The triggers a stage built on `parent` inherits from that stage's own ONBUILD lines. */
export function stageTriggers(parent: Instruction[]): string[] {
  return parent.filter((n) => n.keyword === 'ONBUILD' && n.sub).map(triggerText);
}

/** Parse triggers to run first in a stage; errors point at the stage's FROM. */
export function parseTriggers(triggers: string[], file: string, location: Location): Instruction[] {
  const out: Instruction[] = [];
  for (const t of triggers) {
    let tdf;
    try {
      tdf = parse(t, { file });
    } catch (e) {
      if (e instanceof DockerfileError)
        throw new DockerfileError(e.code, `ONBUILD trigger "${t}": ${e.message}`, location);
      throw e;
    }
    if (tdf.instructions.length !== 1)
      throw new DockerfileError('onbuild', 'onbuild trigger should be a single expression', location);
    const node = tdf.instructions[0];
    if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(node.keyword)) {
      throw new DockerfileError('onbuild', `${node.keyword} isn't allowed as an ONBUILD trigger`, location);
    }
    out.push({ ...node, location });
  }
  return out;
}
