// --explain: after the build, one line per step: hit, miss and why, or metadata.
import chalk, { Chalk } from 'chalk';
import type { ExplainRow } from '../solver/state.js';
import { NpmTrees } from './npm.js';

export async function printExplain(rows: ExplainRow[], color: boolean, contextDir: string): Promise<void> {
  const npm = new NpmTrees(contextDir);
  const c = color ? chalk : new Chalk({ level: 0 });
  const out: string[] = ['', 'Cache report:'];
  for (const r of rows) {
    let status: string;
    switch (r.status) {
      case 'hit':
        // A hit for a reason worth saying ("copied content unchanged": its source stage re-ran).
        status = r.reason ? `${r.reason}: ${c.blue('hit')}` : c.blue('hit');
        break;
      case 'miss': {
        status = `${c.yellow('miss')}: ${r.reason}`;
        const file = /^file (.+) (?:changed|is new|was removed)$/.exec(r.reason ?? '')?.[1];
        const pkg = file ? await npm.lookup(file) : undefined;
        if (pkg)
          status += c.dim(
            ` (npm package ` +
              `${pkg.name}@${pkg.version}${pkg.dependents.length ? `, needed by ${pkg.dependents.join(', ')}` : ''})`,
          );
        break;
      }
      case 'no-cache':
        status = `${c.yellow('miss')}: ${r.reason ?? '--no-cache'}`;
        break;
      case 'base':
        // A tag that --pull found moved is news: the steps above it miss because of it.
        status = r.reason?.startsWith('base image moved') ? c.yellow(r.reason) : c.dim(`base ${r.reason ?? ''}`);
        break;
      default:
        status = c.dim('metadata (no cache needed)');
    }
    out.push(`  ${r.label}  ${status}`);
  }
  process.stderr.write(out.join('\n') + '\n');
}
