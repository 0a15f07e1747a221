// Looks inside built images with tools that are not ours: umoci unpacks an OCI layout into a
// root filesystem (its own whiteout handling), skopeo inspects it.
import { spawnSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ok, tempDir, tsbuild } from './cli.js';
export { readFileSync };

export function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** Unpacks an OCI layout written by `-o type=oci,dest=DIR,tar=false` with umoci; returns the rootfs path. */
export function umociRootfs(layoutDir: string, tag: string): string {
  const out = tempDir('umoci');
  sh('umoci', ['unpack', '--image', `${layoutDir}:${tag}`, join(out, 'bundle')]);
  return join(out, 'bundle', 'rootfs');
}

export function inspect(
  root: string,
  ref: string,
): { Id: string; ManifestDigest: string; Config: any; ImageConfig: any; Manifest: any; Layers: any[] } {
  return JSON.parse(ok(tsbuild(['inspect', ref], { root })).stdout);
}

/**
 * The image manifest an OCI layout's index.json lists (the first, or the one named `tag`): what an
 * export wrote, whose layers are compressed where the store keeps them plain.
 */
export function layoutManifest(
  dir: string,
  tag?: string,
): { layers: { mediaType: string; digest: string; size: number }[] } {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  const desc = tag
    ? index.manifests.find((m: any) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)
    : index.manifests[0];
  return JSON.parse(readFileSync(join(dir, 'blobs', 'sha256', desc.digest.slice(7)), 'utf8'));
}

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: string;
  uid: number;
  gid: number;
  content?: string;
  target?: string;
}

/** A comparable description of a directory tree (skipping the busybox base's own files when asked). */
export function tree(dir: string, skip: (rel: string) => boolean = () => false): Record<string, TreeEntry> {
  const out: Record<string, TreeEntry> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip(r)) continue;
      const st = lstatSync(join(dir, r));
      const e: TreeEntry = {
        type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other',
        mode: (st.mode & 0o7777).toString(8),
        uid: st.uid,
        gid: st.gid,
      };
      if (st.isFile()) e.content = readFileSync(join(dir, r), 'utf8');
      if (st.isSymbolicLink()) e.target = readlinkSync(join(dir, r));
      out[r] = e;
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}
