// The layer codec, `@tsbuild/layerstore/layer`: directory <-> tar (+gzip/zstd) layer streams.
// Apart from the core so that the store's users who never write or read a tar do not see it.
export type { Entry, LayerOptions, Compression } from '../types.js';
export { writeLayer, type WriteLayerOptions } from './write.js';
export { entriesFromDirectory, fileEntry, compareEntryPaths, entryOrderKey, type DirectoryOptions } from './entries.js';
export { unpackLayer, type UnpackOptions, type UnpackResult } from './unpack.js';
export { exportRootfs } from './export-rootfs.js';
export { tarStream } from './tar-writer.js';
export { BeneathReader } from './read-beneath.js';
export { readTar, type TarEntry } from './tar-reader.js';
export { startsTar } from './tar-decode.js';
export { decompress as decompressLayer, mediaTypeOf as layerMediaTypeFor } from './compress.js';
export { getXattr, setXattr } from '@tsbuild/sys';
