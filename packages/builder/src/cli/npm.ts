// --explain for Node projects: a miss caused by a file under node_modules/ is named by the npm
// package it belongs to, read from the project's lockfile by @npmcli/arborist (npm's own tree
// model, so nested and scoped packages resolve exactly as npm laid them out). Loaded only here.
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Store } from '@tsbuild/layerstore';
import { readControlFile } from '../context/context.js';
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

/** One package that is new, gone, or at another version in the project's tree. */
export interface NpmChange {
  name: string;
  /** Where it is in the tree ("node_modules/express/node_modules/debug"). */
  location: string;
  before: string | null;
  after: string | null;
  /** The project's direct dependencies it is reached through ([] for a direct dependency itself). */
  via: string[];
}

type Edge = { to: Node | null };
type Node = {
  name: string;
  version: string;
  location: string;
  target?: Node;
  edgesIn: Set<{ from: { name: string; packageName?: string } }>;
  edgesOut: Map<string, Edge>;
};

/** location -> [name, version, via] of every package in a tree (the project itself left out). */
function flatten(tree: Tree & { edgesOut: Map<string, Edge> }): Map<string, [string, string, string[]]> {
  const via = new Map<string, Set<string>>();
  for (const [dep, edge] of tree.edgesOut) {
    const seen = new Set<Node>();
    const queue: Node[] = [];
    const first = edge.to?.target ?? edge.to;
    if (first) queue.push(first);
    while (queue.length) {
      const n = queue.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      if (n !== first) (via.get(n.location) ?? via.set(n.location, new Set()).get(n.location)!).add(dep);
      for (const e of n.edgesOut.values()) {
        const to = e.to?.target ?? e.to;
        if (to) queue.push(to);
      }
    }
  }
  const out = new Map<string, [string, string, string[]]>();
  for (const [location, node] of tree.inventory as unknown as Map<string, Node>) {
    if (location === '' || (node as { isLink?: boolean }).isLink) continue;
    out.set(location, [node.name, node.version, [...(via.get(location) ?? [])].sort()]);
  }
  return out;
}

/** The packages that differ between two trees, by location, sorted by location. */
export function diffTrees(before: Tree, after: Tree): NpmChange[] {
  const a = flatten(before as Tree & { edgesOut: Map<string, Edge> });
  const b = flatten(after as Tree & { edgesOut: Map<string, Edge> });
  const out: NpmChange[] = [];
  for (const location of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const was = a.get(location);
    const now = b.get(location);
    if (was && now && was[0] === now[0] && was[1] === now[1]) continue;
    out.push({
      name: (now ?? was)![0],
      location,
      before: was?.[1] ?? null,
      after: now?.[1] ?? null,
      via: (now ?? was)![2],
    });
  }
  return out;
}

/** "lodash 4.17.20 → 4.17.21 (via express)", "+ debug 4.3.4 (via express)", "- ms 2.0.0 (direct)". */
export function describeNpmChange(c: NpmChange): string {
  const how = c.via.length ? `via ${c.via.join(', ')}` : 'direct';
  if (c.before === null) return `+ ${c.name} ${c.after} (${how})`;
  if (c.after === null) return `- ${c.name} ${c.before} (${how})`;
  return `${c.name} ${c.before} → ${c.after} (${how})`;
}

const lockNames = ['npm-shrinkwrap.json', 'package-lock.json', 'node_modules/.package-lock.json'];

export class NpmTrees {
  private readonly trees = new Map<string, Promise<Tree | undefined>>();

  constructor(private readonly contextDir: string) {}

  async lookup(path: string): Promise<NpmPackage | undefined> {
    const where = packageLocation(path);
    if (!where) return undefined;
    const node = (await this.current(where.project))?.inventory.get(where.location);
    if (!node) return undefined;
    return {
      name: node.name,
      version: node.version,
      dependents: [...node.edgesIn].map((e) => e.from.packageName ?? e.from.name).sort(),
    };
  }

  /**
   * What changed in the npm tree of the project a changed file belongs to (a package.json, a
   * lockfile, a file under node_modules/), between the manifests a missed step read last time (blobs
   * in the store: solver/npm-inputs.ts) and the context's now. Undefined when the lockfile did not
   * change or the earlier one is not in the store.
   */
  async lockfileChanges(
    file: string,
    manifests: { path: string; before: string | null; after: string | null }[],
    store: Store,
  ): Promise<NpmChange[] | undefined> {
    const project = packageLocation(file)?.project ?? (file.includes('/') ? file.slice(0, file.lastIndexOf('/')) : '');
    const at = (name: string) => manifests.find((m) => m.path === (project ? `${project}/${name}` : name));
    const lock = lockNames.map(at).find((m) => m && m.before !== m.after);
    if (!lock?.before) return undefined;
    const now = await this.current(project);
    if (!now) return undefined;
    const read = async (hex: string | null) =>
      hex && (await store.blobs.has(`sha256:${hex}`)) ? await store.blobs.read(`sha256:${hex}`) : undefined;
    const lockText = await read(lock.before);
    if (!lockText) return undefined;
    // The earlier tree, from its manifests written into a scratch directory (Arborist reads a project
    // directory): the package.json as it was, else the root entry of the lockfile.
    const dir = mkdtempSync(join(tmpdir(), 'tsbuild-npm-'));
    try {
      let pkg = await read(at('package.json')?.before ?? null);
      if (!pkg) {
        const root = (JSON.parse(lockText.toString('utf8')) as { packages?: Record<string, unknown> }).packages?.[''];
        pkg = Buffer.from(JSON.stringify(root ?? {}));
      }
      writeFileSync(join(dir, 'package.json'), pkg);
      const lockPath = join(dir, lock.path.slice(project ? project.length + 1 : 0));
      mkdirSync(dirname(lockPath), { recursive: true });
      writeFileSync(lockPath, lockText);
      const before = await this.load(dir);
      return before ? diffTrees(before, now) : undefined;
    } catch {
      return undefined;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private current(project: string): Promise<Tree | undefined> {
    let tree = this.trees.get(project);
    if (!tree) {
      tree = this.loadFromContext(project);
      this.trees.set(project, tree);
    }
    return tree;
  }

  /**
   * Today's tree of a project of the context, from its manifests copied into a scratch directory (as the earlier
   * tree is made): each read beneath the context as the Dockerfile is (readControlFile), so a lockfile that links
   * out of the context is not read (left out: no package is named), never Arborist's reads by path.
   */
  private async loadFromContext(project: string): Promise<Tree | undefined> {
    const dir = mkdtempSync(join(tmpdir(), 'tsbuild-npm-'));
    try {
      for (const name of ['package.json', ...lockNames]) {
        let text: string;
        try {
          text = readControlFile(this.contextDir, join(this.contextDir, project, name));
        } catch {
          continue; // absent, unreadable, or a link out of the context
        }
        mkdirSync(dirname(join(dir, name)), { recursive: true });
        writeFileSync(join(dir, name), text);
      }
      return await this.load(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
