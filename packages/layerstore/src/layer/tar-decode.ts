// Decoding tar headers from untrusted layers: every field is checked, and what is not
// understood is a TarFormatError, so the reader never guesses. Encoding (tar-header.ts) only
// ever sees our own well-formed entries, hence the two halves and their different rules.
import { BLOCK, type RawHeader, type TarType } from './tar-header.js';

const TYPE_OF_FLAG: Record<string, TarType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'directory',
  '6': 'fifo',
};

export class TarFormatError extends Error {}
/** Well-formed, but something a layer must not contain (sparse files, tape volumes...). */
export class TarUnsupportedError extends Error {
  constructor(
    readonly entry: string,
    message: string,
  ) {
    super(message);
  }
}

function readString(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end === -1 || end > off + len ? off + len : end);
}

function readNumber(b: Buffer, off: number, len: number): number {
  if (b[off] & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as marker.
    if (b[off] === 0xff) throw new TarFormatError('negative base-256 number');
    let v = b[off] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i];
    return v;
  }
  const s = b
    .toString('ascii', off, off + len)
    .replace(/\0.*$/s, '')
    .trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`bad octal field ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

export function decodeBlock(b: Buffer): RawHeader {
  let unsigned = 0,
    signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i];
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  const stored = readNumber(b, 148, 8);
  if (stored !== unsigned && stored !== signed)
    throw new TarFormatError('bad header checksum (not a tar, or corrupted)');
  let name = readString(b, 0, 100);
  const magic = b.toString('latin1', 257, 263);
  if (magic === 'ustar\0' && b[345] !== 0) name = readString(b, 345, 155) + '/' + name;
  return {
    flag: String.fromCharCode(b[156]),
    name,
    mode: readNumber(b, 100, 8),
    uid: readNumber(b, 108, 8),
    gid: readNumber(b, 116, 8),
    size: readNumber(b, 124, 12),
    mtime: readNumber(b, 136, 12),
    linkname: readString(b, 157, 100),
    devmajor: readNumber(b, 329, 8),
    devminor: readNumber(b, 337, 8),
  };
}

/**
 * Whether `b` starts a tar archive as BuildKit's ADD decides it (Go's archive/tar reads a first
 * header): a whole block, not all zero (an end marker), with a right checksum. No magic needed:
 * v7 tars have none.
 */
export function startsTar(b: Buffer): boolean {
  if (b.length < BLOCK || isZeroBlock(b)) return false;
  try {
    decodeBlock(b.subarray(0, BLOCK));
    return true;
  } catch (e) {
    if (e instanceof TarFormatError) return false;
    throw e;
  }
}

export function typeOfFlag(flag: string): TarType | undefined {
  return TYPE_OF_FLAG[flag];
}

/** PAX records as key → raw value bytes (values may be binary, e.g. SCHILY.xattr.security.capability). */
export function decodePax(body: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < body.length) {
    if (body[off] === 0) break; // trailing NUL padding
    const sp = body.indexOf(0x20, off);
    if (sp === -1) throw new TarFormatError('bad PAX record');
    const len = Number(body.toString('ascii', off, sp));
    if (!Number.isInteger(len) || len <= 0 || off + len > body.length)
      throw new TarFormatError('bad PAX record length');
    const rec = body.subarray(sp + 1, off + len);
    const eq = rec.indexOf(0x3d);
    if (eq === -1 || rec[rec.length - 1] !== 0x0a) throw new TarFormatError('bad PAX record');
    out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1, rec.length - 1)));
    off += len;
  }
  return out;
}
