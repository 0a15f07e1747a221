// Reads buildx-style plain progress (`#N title`, `#N DONE`, `#N CACHED`) back into facts.

/** Filesystem steps that ran (DONE) and that were cached (CACHED), by title, stage prefix removed. */
export function steps(stderr: string): { ran: string[]; cached: string[] } {
  const names = new Map<string, string>();
  const ran: string[] = [];
  const cached: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^#(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const [, id, rest] = m as unknown as [string, string, string];
    if (!names.has(id)) names.set(id, rest.replace(/^\[[^\]]+\] /, ''));
    else if (rest.startsWith('DONE') && /^(RUN|COPY|ADD|WORKDIR)/.test(names.get(id)!)) ran.push(names.get(id)!);
    else if (rest === 'CACHED') cached.push(names.get(id)!);
  }
  return { ran, cached };
}
