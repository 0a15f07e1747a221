// ADD of a local archive: recognised by its content (not its name: see archiveKind), unpacked
// with GNU tar, which refuses members that climb out with `..` or absolute paths and never
// writes through a symlink extracted from the same archive. tar would follow a link that an
// earlier source of the same ADD staged, so it unpacks into an empty directory of its own, whose
// entries are then moved into the staging tree beneath its fd (see mergeInto).
import { spawn } from 'node:child_process';
import { closeSync, constants as fsc, openSync, readSync } from 'node:fs';
import { startsTar } from '@tsbuild/layerstore/layer';
import { BuildError, where } from '../../errors.js';
import { namesIn } from '../../rootfs/beneath.js';
import { Beneath } from '../../rootfs/beneath-tree.js';
import type { StepContext } from './context.js';
import { scratchDir } from './commit.js';
import { rel, type Staging } from './staging.js';

export type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

const BLOCK = 512;
const decompressor: Record<Exclude<ArchiveKind, 'tar'>, string> = {
  gzip: 'gzip',
  bzip2: 'bzip2',
  xz: 'xz',
  zstd: 'zstd',
};

/**
 * What ADD does with local file `path`: unpack it as this kind of archive, or (undefined) copy it
 * as it is. As BuildKit decides: the compression is recognised by the first bytes (never the
 * name), and the file is an archive only when what decompresses from it starts with a tar header.
 * A .gz of a text file, an empty file, a tar with no member are copied unchanged: unpacking them
 * gave nothing at all (or a failed build) before.
 */
export async function archiveKind(path: string, fd: number): Promise<ArchiveKind | undefined> {
  const b = Buffer.alloc(BLOCK);
  const head = b.subarray(0, readSync(fd, b, 0, BLOCK, 0));
  const kind = compressionOf(head);
  return startsTar(kind === 'tar' ? head : await decompressedHead(path, fd, decompressor[kind])) ? kind : undefined;
}

/**
 * The file open as `fd` (the caller's, opened beneath the context), open anew: a read offset of its own, for a
 * child's stdin. Through the fd's /proc link, so the same inode whatever its path names now.
 */
function reopen(fd: number): number {
  return openSync(`/proc/self/fd/${fd}`, fsc.O_RDONLY);
}

function compressionOf(b: Buffer): ArchiveKind {
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 3 && b.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (b.length >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'tar';
}

/**
 * The first block of what `tool -dc` makes of `path`: fewer bytes when the stream ends (or breaks)
 * before. The decompressor is stopped once it has given a block; a stream that is not what its
 * first bytes say just gives less.
 */
function decompressedHead(path: string, src: number, tool: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const fd = reopen(src);
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(tool, ['-d', '-c'], { stdio: [fd, 'pipe', 'ignore'] });
    } finally {
      closeSync(fd);
    }
    const chunks: Buffer[] = [];
    let got = 0;
    let settled = false;
    const done = (e?: Error) => {
      if (settled) return;
      settled = true;
      child.stdout!.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (e) reject(e);
      else resolve(Buffer.concat(chunks).subarray(0, BLOCK));
    };
    child.stdout!.on('data', (b: Buffer) => {
      chunks.push(b);
      got += b.length;
      if (got >= BLOCK) done();
    });
    child.on('error', (e) => done(new Error(`cannot run ${tool} to look into ${path}: ${e.message}`)));
    child.on('close', () => done());
  });
}

const flags: Record<ArchiveKind, string[]> = { tar: [], gzip: ['-z'], bzip2: ['-j'], xz: ['-J'], zstd: ['--zstd'] };

type Located = { location: { file: string; line: number; column: number } };

/** Unpacks `file` into the staging tree at `dest` (a directory there, absolute in the image). */
export async function addArchive(
  ctx: StepContext,
  file: string,
  fd: number,
  kind: ArchiveKind,
  staging: Staging,
  dest: string,
  step: Located,
): Promise<void> {
  const scratch = await scratchDir(ctx, 'unpack-');
  try {
    await extractArchive(file, fd, kind, scratch.path, step);
    staging.unlisted = true;
    const from = new Beneath(scratch.path);
    try {
      // The archive's top names, which land in dest: whether it gets the step's time (Staging.dateTouched).
      const topFd = from.openDir('');
      let top: string[];
      try {
        top = namesIn(topFd);
      } finally {
        closeSync(topFd);
      }
      await staging.unpackedInto(
        dest,
        top.map((name): [string, boolean] => [name, from.lstat(name)!.isDirectory()]),
      );
      mergeInto(from, '', staging.fs, rel(dest));
    } catch (e) {
      throw new BuildError(`${where(step)}: ADD could not place the contents of ${file}: ${(e as Error).message}`);
    } finally {
      from.close();
    }
  } finally {
    await scratch.cleanup();
  }
}

/**
 * Moves the entries of directory `at` of `from` into directory `to` of `into` (same filesystem:
 * both are in the store's scratch area). A directory meets a directory: merged, and the one
 * already there keeps its metadata (tar's --no-overwrite-dir). Anything else replaces what is
 * there, link or not, which is removed first and never followed.
 */
function mergeInto(from: Beneath, at: string, into: Beneath, to: string): void {
  // Its own fd: the recursion below opens others, and Beneath keeps only a few cached.
  const fromFd = from.openDir(at);
  try {
    for (const name of namesIn(fromFd).sort()) {
      const src = at ? `${at}/${name}` : name;
      const dst = to ? `${to}/${name}` : name;
      const s = from.lstat(src)!;
      const d = into.lstat(dst);
      if (s.isDirectory() && d?.isDirectory()) {
        mergeInto(from, src, into, dst);
        continue;
      }
      if (d) into.remove(dst);
      into.moveIn(fromFd, name, dst);
    }
  } finally {
    closeSync(fromFd);
  }
}

function extractArchive(file: string, src: number, kind: ArchiveKind, dest: string, step: Located): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = [
      '-x',
      ...flags[kind],
      '-f',
      '-', // stdin: the file open beneath the context
      '-C',
      dest,
      '--same-owner',
      '--numeric-owner',
      '--same-permissions',
      '--no-overwrite-dir',
      '--xattrs',
      '--xattrs-include=*',
    ];
    const input = reopen(src);
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn('tar', args, { stdio: [input, 'ignore', 'pipe'] });
    } finally {
      closeSync(input);
    }
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', (e) => reject(new BuildError(`${where(step)}: cannot run tar: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else
        reject(
          new BuildError(
            `${where(step)}: ADD could not unpack ${file}: ${err.trim().split('\n').slice(-3).join('; ')}`,
          ),
        );
    });
  });
}
