// ext4's "top directory" flag (chattr +T): directories created directly inside a directory
// carrying it are placed by the Orlov allocator as if they were top-level directories, i.e.
// in the block group with the fewest directories, instead of next to their parent.
//
// Why the store wants that for tmp/: on an ext4 without a journal, a new inode is never taken
// from one freed less than 60 s ago (300 s while its inode table block is dirty), and the
// allocator re-scans every such inode of the parent's group for each file it creates
// (fs/ext4/ialloc.c, recently_deleted()). After `rm -rf` of a 20,000-file tree, creating
// another one next to it costs ~1 ms of system time per file instead of ~40 µs: a COPY of
// node_modules went from 2.5 s to 25 s. Scratch dirs spread away from the freed inodes do not
// pay that. Elsewhere (a journal, another filesystem) the flag is harmless or unsupported.
import { closeSync, constants as fsc, openSync } from 'node:fs';
import { call, DataType } from './libc.js';

const FS_IOC_GETFLAGS = 0x80086601;
const FS_IOC_SETFLAGS = 0x40086602;
const FS_TOPDIR_FL = 0x00020000;

/** Set the flag on dir; false where the filesystem has no such flag. Other errors throw. */
export function markTopDir(dir: string): boolean {
  const fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    const flags = Buffer.alloc(4);
    try {
      call('ioctl', dir, [DataType.I32, DataType.I64, DataType.U8Array], [fd, FS_IOC_GETFLAGS, flags]);
      if (flags.readUInt32LE(0) & FS_TOPDIR_FL) return true;
      flags.writeUInt32LE(flags.readUInt32LE(0) | FS_TOPDIR_FL, 0);
      call('ioctl', dir, [DataType.I32, DataType.I64, DataType.U8Array], [fd, FS_IOC_SETFLAGS, flags]);
      return true;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (
        code === 'ENOTTY' ||
        code === 'ENOTSUP' ||
        code === 'EOPNOTSUPP' ||
        code === 'EINVAL' ||
        code === 'EPERM' ||
        code === 'EACCES'
      )
        return false;
      throw e;
    }
  } finally {
    closeSync(fd);
  }
}

const marked = new Set<string>();

/**
 * markTopDir once per process and directory, never failing: for the store's scratch area,
 * where a missing flag only costs speed. The flag stays on disk, so later processes find it set.
 */
export function spreadSubdirs(dir: string): void {
  if (marked.has(dir)) return;
  marked.add(dir);
  try {
    markTopDir(dir);
  } catch {
    /* speed only */
  }
}
