// Entries → tar bytes, as an async generator so the consumer's pace (hashing, compression,
// the blob store's disk) is the only thing that pulls file content: memory stays flat.
import type { Readable } from 'node:stream';
import type { Entry } from '../types.js';
import { encodeHeader, padding, type TarHeader } from './tar-header.js';
import { SYNC_CONTENT, type SyncContent } from './entries.js';

const END_OF_ARCHIVE = Buffer.alloc(1024);

function dirname(p: string): string {
  const i = p.lastIndexOf('/');
  return i === -1 ? '' : p.slice(0, i + 1);
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** How one Entry is spelled in a tar: whiteouts and opaque markers become OCI `.wh.` files. */
export function headerOf(e: Entry): TarHeader {
  const base = { mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, mtime: Math.floor(e.mtime), size: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: e.xattrs ?? {} };
  switch (e.type) {
    case 'whiteout':
      return { ...base, name: dirname(e.path) + '.wh.' + basename(e.path), type: 'file', xattrs: {} };
    case 'opaque':
      return { ...base, name: (e.path === '' ? '' : e.path.replace(/\/$/, '') + '/') + '.wh..wh..opq', type: 'file', xattrs: {} };
    case 'file':
      return { ...base, name: e.path, type: 'file', size: e.size ?? 0 };
    case 'directory':
      return { ...base, name: e.path, type: 'directory' };
    case 'symlink':
      return { ...base, name: e.path, type: 'symlink', linkname: e.linkname ?? '' };
    case 'hardlink':
      return { ...base, name: e.path, type: 'hardlink', linkname: e.linkname ?? '' };
    case 'fifo':
      return { ...base, name: e.path, type: 'fifo' };
    case 'char':
    case 'block':
      return { ...base, name: e.path, type: e.type, devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0 };
  }
}

/**
 * The tar stream of entries, in the order given. A file whose content differs in length from its
 * size fails. With `align`, a directory file's reads are cut so that they end on multiples of
 * `align` in the stream: a consumer that cuts the stream into `align`-sized chunks then gets
 * whole reads as chunks and need not copy them (the bytes are the same either way).
 */
export async function* tarStream(entries: AsyncIterable<Entry> | Iterable<Entry>, opts: { align?: number } = {}): AsyncGenerator<Buffer> {
  const align = opts.align;
  let offset = 0;
  for await (const e of entries) {
    const h = headerOf(e);
    const header = encodeHeader(h);
    offset += header.length;
    yield header;
    if (e.type !== 'file' || h.size === 0) continue;
    if (!e.open) throw new Error(`${e.path}: file entry without content`);
    let written = 0;
    const sync = (e as { [SYNC_CONTENT]?: SyncContent })[SYNC_CONTENT];
    const body: Iterable<Buffer> | Readable = sync ? sync(align ? align - (offset % align) : undefined) : e.open();
    for await (const chunk of body as AsyncIterable<Buffer>) {
      written += chunk.length;
      if (written > h.size) { if ('destroy' in body) body.destroy(); throw new Error(`${e.path}: file grew while being read (expected ${h.size} bytes)`); }
      yield chunk;
    }
    if (written !== h.size) throw new Error(`${e.path}: file shrank while being read (${written} of ${h.size} bytes)`);
    offset += written;
    const pad = padding(h.size);
    if (pad) { offset += pad; yield Buffer.alloc(pad); }
  }
  yield END_OF_ARCHIVE;
}
