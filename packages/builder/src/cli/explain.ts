// --explain: after the build, one line per step: hit, miss and why, or metadata.
import chalk, { Chalk } from 'chalk';
import type { ExplainRow } from '../build/state.js';

export function printExplain(rows: ExplainRow[], color: boolean): void {
  const c = color ? chalk : new Chalk({ level: 0 });
  const out: string[] = ['', 'Cache report:'];
  for (const r of rows) {
    let status: string;
    switch (r.status) {
      case 'hit':
        status = c.blue('hit');
        break;
      case 'miss':
        status = `${c.yellow('miss')}: ${r.reason}`;
        break;
      case 'no-cache':
        status = `${c.yellow('miss')}: --no-cache`;
        break;
      case 'base':
        status = c.dim(`base ${r.reason ?? ''}`);
        break;
      default:
        status = c.dim('metadata (no cache needed)');
    }
    out.push(`  ${r.label}  ${status}`);
  }
  process.stderr.write(out.join('\n') + '\n');
}
