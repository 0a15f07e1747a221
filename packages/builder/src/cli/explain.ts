// --explain: the report of every step of a build or a dry run (hit, miss and why, metadata, base),
// as text (on stderr after a build, on stdout for a dry run, whose result it is) or as the JSON
// document of docs/explain.md (on stdout, or --explain-file FILE).
import { writeFileSync } from 'node:fs';
import chalk, { Chalk } from 'chalk';
import type { Store } from '@tsbuild/layerstore';
import type { ExplainRow } from '../solver/state.js';
import { NpmTrees, describeNpmChange, type NpmChange, type NpmPackage } from './npm.js';

/** The version of the JSON document; a change that can break a reader bumps it (docs/explain.md). */
export const ExplainSchemaVersion = 1;

export interface ExplainOptions {
  format: 'text' | 'json';
  /** Write here instead of stdout/stderr. */
  file?: string;
  dryRun: boolean;
  /** The image a build made; null for a dry run. */
  image: { id: string; manifestDigest: string; tags: string[] } | null;
  color: boolean;
  contextDir: string;
  store: Store;
}

/** What --explain says of a miss in npm's terms (cli/npm.ts): the package a file is in, what the lockfile changed. */
interface NpmNote {
  pkg?: NpmPackage;
  changes: NpmChange[];
}

/** The most lockfile changes the text report lists for one step (the JSON has them all). */
const textChanges = 5;

export async function writeExplain(rows: ExplainRow[], o: ExplainOptions): Promise<void> {
  const npm = new NpmTrees(o.contextDir);
  const packages = new Map<ExplainRow, NpmNote>();
  for (const r of rows) {
    if (r.change?.kind !== 'file' || !r.change.input) continue;
    const pkg = await npm.lookup(r.change.input);
    const changes = r.npm ? await npm.lockfileChanges(r.change.input, r.npm, o.store) : undefined;
    if (pkg || changes) packages.set(r, { pkg, changes: changes ?? [] });
  }
  const text =
    o.format === 'json'
      ? JSON.stringify(explainDocument(rows, o, packages), null, 2) + '\n'
      : explainText(rows, o.color, packages, o.dryRun);
  if (o.file) writeFileSync(o.file, text);
  else if (o.format === 'json' || o.dryRun) process.stdout.write(text);
  else process.stderr.write(text);
}

/** The JSON document (docs/explain.md, docs/explain.schema.json). */
export function explainDocument(
  rows: ExplainRow[],
  o: Pick<ExplainOptions, 'dryRun' | 'image'>,
  packages: Map<ExplainRow, NpmNote>,
) {
  const steps = rows.map((r) => {
    const cached = r.status !== 'miss' && r.status !== 'no-cache';
    const note = packages.get(r);
    const pkg = note?.pkg;
    return {
      stage: r.stage,
      index: r.index,
      instruction: r.instruction,
      label: r.label,
      status: r.status,
      cached,
      key: r.key ?? null,
      base: r.base ?? null,
      reason: r.change
        ? {
            kind: r.change.kind,
            input: r.change.input,
            before: r.change.before,
            after: r.change.after,
            text: r.change.text,
            ...(note
              ? {
                  npm: {
                    ...(pkg ? { package: pkg.name, version: pkg.version, dependents: pkg.dependents } : {}),
                    changes: note.changes,
                  },
                }
              : {}),
          }
        : null,
    };
  });
  return {
    schemaVersion: ExplainSchemaVersion,
    dryRun: o.dryRun,
    image: o.image,
    allCached: steps.every((s) => s.cached),
    steps,
  };
}

function explainText(rows: ExplainRow[], color: boolean, packages: Map<ExplainRow, NpmNote>, dry: boolean): string {
  const c = color ? chalk : new Chalk({ level: 0 });
  const out: string[] = dry ? ['Dry run (nothing was run or written):'] : ['', 'Cache report:'];
  for (const r of rows) {
    let status: string;
    switch (r.status) {
      case 'hit':
        // A hit for a reason worth saying ("copied content unchanged": its source stage re-ran).
        status = r.reason ? `${r.reason}: ${c.blue('hit')}` : c.blue('hit');
        break;
      case 'miss': {
        status = `${c.yellow('miss')}: ${r.reason}`;
        const note = packages.get(r);
        const pkg = note?.pkg;
        if (note?.changes.length) {
          const shown = note.changes.slice(0, textChanges).map(describeNpmChange);
          const more = note.changes.length - shown.length;
          status += `: ${shown.join(', ')}${more > 0 ? `, and ${more} more` : ''}`;
        }
        if (pkg) {
          const by = pkg.dependents.length ? `, needed by ${pkg.dependents.join(', ')}` : '';
          status += c.dim(` (npm package ${pkg.name}@${pkg.version}${by})`);
        }
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
  return out.join('\n') + '\n';
}
