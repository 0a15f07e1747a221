export { writeLayer, type WriteLayerOptions } from './write.js';
export { entriesFromDirectory, fileEntry, compareEntryPaths, entryOrderKey, type DirectoryOptions } from './entries.js';
export { unpackLayer, type UnpackOptions, type UnpackResult } from './unpack.js';
export { tarStream } from './tar-writer.js';
export { readTar, type TarEntry } from './tar-reader.js';
export { startsTar, type TarHeader, type TarType } from './tar-header.js';
export { decompress as decompressLayer, mediaTypeOf as layerMediaTypeFor, GZIP_CHUNK, GZIP_LEVEL } from './compress.js';
