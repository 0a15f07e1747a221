// Extended attributes without following symlinks. Node has no xattr API; these are the
// l* variants so a symlink's own attributes are read and a planted link is never followed,
// and fsetXattr for a file already open.
import { readFileSync } from 'node:fs';
import { call, DataType, SysError } from './libc.js';

const XATTR_LIST_MAX = 65536; // Linux limit for the name list
const XATTR_SIZE_MAX = 65536; // Linux limit for one value

/** Names of the attributes on path itself. Empty when the filesystem has none or does not support them. */
export function listXattrs(path: string): string[] {
  // Ask for the size first with a NULL buffer: most files have no attributes, and a
  // pointer-free call costs half as much through ffi-rs as one that marshals a buffer.
  let n: number;
  try {
    n = call('llistxattr', path, [DataType.String, DataType.I64, DataType.I64], [path, 0, 0]);
  } catch (e) {
    if (e instanceof SysError && (e.code === 'ENOTSUP' || e.code === 'EOPNOTSUPP')) return [];
    throw e;
  }
  if (n <= 0) return [];
  const buf = Buffer.allocUnsafe(Math.min(Math.max(n, 256) * 2, XATTR_LIST_MAX));
  n = call('llistxattr', path, [DataType.String, DataType.U8Array, DataType.I64], [path, buf, buf.length]);
  if (n <= 0) return [];
  return buf
    .subarray(0, n - 1)
    .toString('utf8')
    .split('\0');
}

/** Value of one attribute, or undefined when it is absent. */
export function getXattr(path: string, name: string): Buffer | undefined {
  let buf = Buffer.allocUnsafe(256);
  for (;;) {
    try {
      const n = call(
        'lgetxattr',
        path,
        [DataType.String, DataType.String, DataType.U8Array, DataType.I64],
        [path, name, buf, buf.length],
      );
      return Buffer.from(buf.subarray(0, n));
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      if (e.code === 'ENODATA') return undefined;
      if (e.code === 'ERANGE' && buf.length < XATTR_SIZE_MAX) {
        buf = Buffer.allocUnsafe(XATTR_SIZE_MAX);
        continue;
      }
      throw e;
    }
  }
}

/** All attributes of path as name → value. */
export function readXattrs(path: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const name of listXattrs(path)) {
    const v = getXattr(path, name);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

export function setXattr(path: string, name: string, value: Buffer): void {
  // ffi-rs passes an empty buffer as a dangling pointer; give it one byte with size 0.
  const buf = value.length === 0 ? Buffer.alloc(1) : value;
  call(
    'lsetxattr',
    path,
    [DataType.String, DataType.String, DataType.U8Array, DataType.I64, DataType.I32],
    [path, name, buf, value.length, 0],
  );
}

/** setXattr on an open file (a regular file or directory opened beneath a directory fd). */
export function fsetXattr(fd: number, name: string, value: Buffer): void {
  const buf = value.length === 0 ? Buffer.alloc(1) : value;
  const types = [DataType.I32, DataType.String, DataType.U8Array, DataType.I64, DataType.I32];
  call('fsetxattr', `fd ${fd}`, types, [fd, name, buf, value.length, 0]);
}

export function removeXattr(path: string, name: string): void {
  call('lremovexattr', path, [DataType.String, DataType.String], [path, name]);
}

let userns: boolean | undefined;

/**
 * Whether this process runs in a user namespace (rootless tsbuild): its uid_map is not the host's
 * identity map. The same test as the sandbox's userNamespace().
 */
export function inUserNamespace(): boolean {
  if (userns === undefined) {
    let initial = true;
    try {
      const f = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
      initial = f.length === 3 && f[0] === '0' && f[1] === '0' && f[2] === '4294967295';
    } catch {
      /* no /proc: the host's namespace */
    }
    userns = !initial;
  }
  return userns;
}

/**
 * The namespace of overlayfs's own attributes (opaque, redirect, origin, ...) in this process's
 * snapshots and upper dirs: `trusted.overlay.` as the host's root; `user.overlay.` in a user
 * namespace (rootless tsbuild, whose sandbox mounts overlay with `userxattr`: trusted.* needs
 * CAP_SYS_ADMIN in the host's namespace).
 */
export function overlayXattrPrefix(): string {
  return inUserNamespace() ? 'user.overlay.' : 'trusted.overlay.';
}
