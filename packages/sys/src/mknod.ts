// mknod(2) for fifos, devices and overlay whiteouts (0/0 char devices). Node has no mknod.
import { call, DataType } from './libc.js';

export const S_IFMT = 0o170000;
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

/** glibc's gnu_dev_makedev: the 64-bit dev_t layout. BigInt because the high bits exceed 2^53 for big majors. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major),
    mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

export function major(dev: number): number {
  const d = BigInt(dev);
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
}

export function minor(dev: number): number {
  const d = BigInt(dev);
  return Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
}

/**
 * Create a node. The caller chmods afterwards: mknod is subject to the process umask, and
 * changing the umask of a multi-threaded Node process would race with other file creation.
 */
export function mknod(path: string, type: number, perm: number, maj = 0, min = 0): void {
  call(
    'mknod',
    path,
    [DataType.String, DataType.U32, DataType.BigInt],
    [path, (type & S_IFMT) | (perm & 0o7777), makedev(maj, min)],
  );
}
