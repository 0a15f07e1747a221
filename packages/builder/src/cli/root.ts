// Where the store lives: --root, else $TSBUILD_ROOT, else /var/lib/tsbuild for root and the
// XDG data dir otherwise, rootless included (docs/cli.md, "Where it lives"). Rootless, the CLI is
// uid 0 of its own user namespace, and the user's home is still where $HOME says.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Store } from '@tsbuild/layerstore';
import { rootless } from '@tsbuild/sandbox';

export function storeRoot(flag: string | undefined): string {
  if (flag) return resolve(flag);
  if (process.env.TSBUILD_ROOT) return resolve(process.env.TSBUILD_ROOT);
  if (process.getuid?.() === 0 && !rootless()) return '/var/lib/tsbuild';
  const xdg = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(xdg, 'tsbuild');
}

/**
 * Open the store. A command that writes or uses content (build, run, pull, push, save, load, tag,
 * start, commit) names its lease: everything it touches is then kept from prune until it ends.
 */
export async function openStore(flag: string | undefined, lease?: string): Promise<Store> {
  const store = await Store.open(storeRoot(flag));
  if (lease) await store.beginLease(lease);
  return store;
}
