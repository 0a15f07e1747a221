// @tsbuild/sys: the lowest-level primitives, shared by layerstore, sandbox, containers and builder. Knows
// nothing of images or sandboxes.
export { processStart, processStat, selfStart, pidAlive, type ProcessStat } from './process.js';
export { DEFAULT_PATH } from './defaults.js';
export { writeFileAtomic, fsyncDir, ownedId, parseOwner, type AtomicWriteOptions } from './atomic.js';
// libc through ffi-rs: the calls Node lacks, with errno as err.code.
export { call, DataType, SysError } from './libc.js';
// The beneath-fd mechanism: every file operation in an untrusted tree goes through these.
export {
  at,
  self,
  haveProcFd,
  openat2,
  openBeneath,
  walkBeneath,
  chmodAt,
  removeTreeAt,
  DIR_FLAGS,
  O_PATH,
  O_CLOEXEC,
} from './beneath.js';
export { removeTreeBeneath } from './rmtree.js';
export { mknod, makedev, major, minor, S_IFIFO, S_IFCHR, S_IFBLK } from './mknod.js';
export {
  listXattrs,
  getXattr,
  readXattrs,
  setXattr,
  fsetXattr,
  removeXattr,
  overlayXattrPrefix,
  inUserNamespace,
} from './xattr.js';
export { markTopDir, spreadSubdirs } from './topdir.js';
export { mkdirs } from './mkdirs.js';
