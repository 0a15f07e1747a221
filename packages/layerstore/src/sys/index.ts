export { listXattrs, getXattr, readXattrs, setXattr, fsetXattr, removeXattr, overlayXattrPrefix } from './xattr.js';
export { at, openBeneath, chmodAt, removeTreeAt, DIR_FLAGS } from './beneath.js';
export { mknod, makedev, major, minor, S_IFIFO, S_IFCHR, S_IFBLK } from './mknod.js';
export { SysError } from './libc.js';
export { markTopDir, spreadSubdirs } from './topdir.js';
export { removeTreeBeneath } from './rmtree.js';
