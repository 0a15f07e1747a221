// Node-aware --explain (cli/npm.ts) compares the npm tree of a project at the cached build with
// today's. What that needs is the project's package.json and lockfile as they were: on a miss, a step
// that copies them keeps their content as blobs of its --explain inputs record (kept from prune by the
// record), named by the content digest its key already holds. Nothing else of the project is kept.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { Digest, Store } from '@tsbuild/layerstore';
import type { Inputs } from './cachekey.js';
import { sha256 } from './cachekey.js';

/** package.json, package-lock.json, npm-shrinkwrap.json of a project (not of a package under node_modules). */
const manifest = /^file:((?:.*\/)?)(package\.json|package-lock\.json|npm-shrinkwrap\.json)$/;
const hiddenLock = /^file:((?:.*\/)?)node_modules\/\.package-lock\.json$/;

/** A project's manifest files among a step's inputs: path -> the content digest (hex) the key holds. */
export function npmManifests(inputs: Inputs): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, digest] of inputs) {
    const m = manifest.exec(name) ?? hiddenLock.exec(name);
    if (!m || m[1].split('/').includes('node_modules')) continue;
    // A regular file's input is `file:MODE:SHA256` (ops/sources.ts fileInput).
    const hex = /^file:[0-7]+:([a-f0-9]{64})$/.exec(digest)?.[1];
    if (hex) out.set(name.slice('file:'.length), hex);
  }
  return out;
}

const maxManifest = 64 << 20;

/**
 * Stores the manifests' content as blobs and returns their digests. A file is read without following a
 * symlink in its last component and only if it is a regular file (a FIFO would block); what does not
 * hash to the digest the key holds (changed since, or swapped) is dropped, so only what the build
 * read is ever kept.
 */
export async function keepManifests(store: Store, contextDir: string, files: Map<string, string>): Promise<Digest[]> {
  const kept: Digest[] = [];
  for (const [path, hex] of files) {
    if (path.split('/').includes('..')) continue;
    let fd: number;
    try {
      fd = openSync(join(contextDir, path), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch {
      continue;
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || st.size > maxManifest) continue;
      const buf = Buffer.alloc(st.size);
      let off = 0;
      while (off < buf.length) {
        const n = readSync(fd, buf, off, buf.length - off, off);
        if (n === 0) break;
        off += n;
      }
      if (off !== buf.length || sha256(buf) !== hex) continue;
      kept.push((await store.blobs.put(buf)).digest);
    } finally {
      closeSync(fd);
    }
  }
  return kept;
}
