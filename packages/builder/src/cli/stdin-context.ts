// `tsbuild build -`: the build context (or the Dockerfile) read from stdin, as `docker build -` takes it.
// What stdin holds is told by its content, as docker's CLI does: a tar (plain, gzip, bzip2, xz or zstd)
// is the context, unpacked into a directory of this build's own; anything else is the Dockerfile, and the
// context is empty. The unpacked archive is untrusted input: it is written only in the store (its tmp/,
// where a dead build's leftovers are removed at the next Store.open, as every temp dir of the store).
import { spawn } from 'node:child_process';
import { closeSync, createWriteStream, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Store } from '@tsbuild/layerstore';
import { removeTreeBeneath } from '@tsbuild/sys';
import { UsageError } from '../errors.js';
import { archiveKind, type ArchiveKind } from '../solver/ops/archive.js';

export interface StdinContext {
  /** The context directory: the unpacked archive, or an empty directory. */
  dir: string;
  /** The Dockerfile read from stdin, when stdin was no archive. */
  dockerfileText?: string;
  cleanup(): void;
}

const untarFlags: Record<ArchiveKind, string[]> = {
  tar: [],
  gzip: ['-z'],
  bzip2: ['-j'],
  xz: ['-J'],
  zstd: ['--zstd'],
};

/**
 * Reads stdin to its end. `file`: the -f flag, which names a file in an archive and nothing else;
 * `root`: the store's root directory.
 */
export async function stdinContext(file: string | undefined, root: string): Promise<StdinContext> {
  const temp = await (await Store.open(root)).tempDir('stdin');
  const cleanup = () => removeTreeBeneath(temp);
  try {
    const input = join(temp, 'stdin');
    await pipeline(process.stdin, createWriteStream(input, { mode: 0o600 }));
    const dir = join(temp, 'context');
    mkdirSync(dir, { mode: 0o755 });
    const fd = openSync(input, 'r');
    let kind: ArchiveKind | undefined;
    try {
      kind = await archiveKind('stdin', fd);
    } finally {
      closeSync(fd);
    }
    if (kind === undefined) {
      if (file !== undefined)
        throw new UsageError(
          `-f ${file}: the Dockerfile is on stdin (context "-"); a Dockerfile and -f are two Dockerfiles`,
        );
      return { dir, dockerfileText: readFileSync(input, 'utf8'), cleanup };
    }
    if (file === '-')
      throw new UsageError('-f - and context "-": stdin cannot be both the build context and the Dockerfile');
    await untar(input, kind, dir);
    return { dir, cleanup };
  } catch (e) {
    try {
      cleanup();
    } catch {
      /* the error that stopped the build is the one to tell; the next Store.open removes the rest */
    }
    throw e;
  }
}

// GNU tar into a directory nobody else writes: it refuses members that climb out with `..` or absolute
// paths and never writes through a symlink extracted from the same archive (as ADD's archives, ops/archive.ts).
function untar(input: string, kind: ArchiveKind, dest: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = ['-x', ...untarFlags[kind], '-f', input, '-C', dest, '--no-same-owner', '--no-overwrite-dir'];
    const child = spawn('tar', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', (e) => reject(new UsageError(`context "-": cannot run tar: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new UsageError(`context "-": cannot unpack the archive on stdin: ${err.trim().split('\n').pop()}`));
    });
  });
}
