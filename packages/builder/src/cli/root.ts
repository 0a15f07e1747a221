// Where the store lives: --root, else $TSBUILD_ROOT, else /var/lib/tsbuild for root and the
// XDG data dir otherwise (docs/cli.md, "Where it lives").
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Store } from '@tsbuild/layerstore';

export function storeRoot(flag: string | undefined): string {
  if (flag) return resolve(flag);
  if (process.env.TSBUILD_ROOT) return resolve(process.env.TSBUILD_ROOT);
  if (process.getuid?.() === 0) return '/var/lib/tsbuild';
  const xdg = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(xdg, 'tsbuild');
}

export function openStore(flag: string | undefined): Promise<Store> {
  return Store.open(storeRoot(flag));
}
