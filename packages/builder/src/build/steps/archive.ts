// ADD of a local archive: recognised by its first bytes (not its name), unpacked with GNU
// tar, which refuses members that climb out with `..` or absolute paths and never writes
// through a symlink extracted from the same archive.
import { open } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { BuildError, where } from '../errors.js';

export type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

export async function archiveKind(path: string): Promise<ArchiveKind | undefined> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(512);
    const { bytesRead } = await fh.read(b, 0, 512, 0);
    if (bytesRead >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
    if (bytesRead >= 3 && b.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
    if (bytesRead >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
    if (bytesRead >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    if (bytesRead >= 262 && b.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    return undefined;
  } finally {
    await fh.close();
  }
}

const flags: Record<ArchiveKind, string[]> = { tar: [], gzip: ['-z'], bzip2: ['-j'], xz: ['-J'], zstd: ['--zstd'] };

export function extractArchive(file: string, kind: ArchiveKind, dest: string, step: { location: { file: string; line: number; column: number } }): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = ['-x', ...flags[kind], '-f', file, '-C', dest, '--same-owner', '--numeric-owner', '--same-permissions', '--no-overwrite-dir', '--xattrs', '--xattrs-include=*'];
    const child = spawn('tar', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    child.on('error', (e) => reject(new BuildError(`${where(step)}: cannot run tar: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new BuildError(`${where(step)}: ADD could not unpack ${file}: ${err.trim().split('\n').slice(-3).join('; ')}`));
    });
  });
}
