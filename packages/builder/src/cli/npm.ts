// --explain for Node projects: a miss caused by a file under node_modules/ is named by the npm
// package it belongs to, read from the project's lockfile by @npmcli/arborist (npm's own tree
// model, so nested and scoped packages resolve exactly as npm laid them out). Loaded only here.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type ArboristClass from '@npmcli/arborist';

export interface NpmPackage {
  name: string;
  version: string;
  /** Who depends on it, by package name (the project's own name from its package.json included). */
  dependents: string[];
}

type Tree = {
  inventory: Map<
    string,
    { name: string; version: string; edgesIn: Set<{ from: { name: string; packageName?: string } }> }
  >;
};

/** The package directory of a node_modules path: its root (the project) and its location in the tree. */
export function packageLocation(path: string): { project: string; location: string } | undefined {
  const parts = path.split('/');
  const first = parts.indexOf('node_modules');
  if (first < 0) return undefined;
  let last = -1;
  for (let i = first; i < parts.length - 1; i++) if (parts[i] === 'node_modules') last = i;
  if (last < 0) return undefined;
  const nameParts = parts[last + 1].startsWith('@') ? 2 : 1;
  if (last + nameParts >= parts.length) return undefined;
  return { project: parts.slice(0, first).join('/'), location: parts.slice(first, last + 1 + nameParts).join('/') };
}

export class NpmTrees {
  private readonly trees = new Map<string, Promise<Tree | undefined>>();

  constructor(private readonly contextDir: string) {}

  async lookup(path: string): Promise<NpmPackage | undefined> {
    const where = packageLocation(path);
    if (!where) return undefined;
    let tree = this.trees.get(where.project);
    if (!tree) {
      tree = this.load(join(this.contextDir, where.project));
      this.trees.set(where.project, tree);
    }
    const node = (await tree)?.inventory.get(where.location);
    if (!node) return undefined;
    return {
      name: node.name,
      version: node.version,
      dependents: [...node.edgesIn].map((e) => e.from.packageName ?? e.from.name).sort(),
    };
  }

  /** The lockfile's view (package-lock.json, npm-shrinkwrap.json or node_modules/.package-lock.json); none, none. */
  private async load(project: string): Promise<Tree | undefined> {
    try {
      // require, not import(): the CLI runs from a script compiled through V8's code cache
      // (bin/tsbuild.cjs), where import() has no loader to call on Node 20. Arborist is CommonJS.
      const Arborist = createRequire(import.meta.url)('@npmcli/arborist') as typeof ArboristClass;
      return (await new Arborist({ path: project }).loadVirtual()) as Tree;
    } catch {
      return undefined;
    }
  }
}
