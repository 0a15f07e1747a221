// @tsbuild/sys: the lowest-level primitives, shared by layerstore, sandbox and builder. Knows nothing of
// images or sandboxes.
export { processStart, selfStart, pidAlive } from './process.js';
export { writeFileAtomic, fsyncDir, ownedId, parseOwner, type AtomicWriteOptions } from './atomic.js';
