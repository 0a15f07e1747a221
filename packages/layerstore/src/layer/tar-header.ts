// POSIX ustar + PAX header encoding and decoding, written here rather than taken from
// tar-stream 3.2.2 because tar-stream carries PAX values as UTF-8 strings: binary xattr
// values (security.capability) come out corrupted, and it has no PAX uid/gid/mtime.
// Encoding is deterministic: no uname/gname, no atime/ctime, a fixed PAX header name.

export type TarType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo';

export interface TarHeader {
  name: string;
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Whole seconds since the epoch. */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Record<string, Buffer>;
}

export const BLOCK = 512;

const FLAG: Record<TarType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  directory: '5',
  fifo: '6',
};
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

const OCTAL_MAX_8 = 0o7777777; // 7 digits + NUL
const OCTAL_MAX_12 = 0o77777777777; // 11 digits + NUL

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e || s.charCodeAt(i) < 0x20) return false;
  return true;
}

/** Split a name into ustar prefix (≤155) and name (≤100) at a '/', or undefined if it cannot fit. */
function splitUstar(name: string): [string, string] | undefined {
  if (!isAscii(name)) return undefined;
  if (name.length <= 100) return ['', name];
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i),
      rest = name.slice(i + 1);
    if (rest.length === 0 || rest.length > 100) return undefined;
    if (prefix.length <= 155) return [prefix, rest];
  }
  return undefined;
}

function writeOctal(buf: Buffer, off: number, width: number, value: number): void {
  buf.write(value.toString(8).padStart(width - 1, '0'), off, width - 1, 'ascii');
  buf[off + width - 1] = 0;
}

function paxRecord(key: string, value: Buffer): Buffer {
  // "LEN key=value\n" where LEN counts itself.
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length > len) len++;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

function ustarBlock(h: {
  name: string;
  prefix: string;
  flag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
}): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(h.name, 0, 100, 'utf8');
  writeOctal(b, 100, 8, h.mode & 0o7777);
  writeOctal(b, 108, 8, h.uid);
  writeOctal(b, 116, 8, h.gid);
  writeOctal(b, 124, 12, h.size);
  writeOctal(b, 136, 12, h.mtime);
  b.fill(0x20, 148, 156);
  b.write(h.flag, 156, 1, 'ascii');
  b.write(h.linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'ascii');
  writeOctal(b, 329, 8, h.devmajor);
  writeOctal(b, 337, 8, h.devminor);
  b.write(h.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  writeOctal(b, 148, 7, sum);
  b[155] = 0x20;
  return b;
}

function padding(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

/** The header block(s) of one entry: an optional PAX extended header, then the ustar header. */
export function encodeHeader(h: TarHeader): Buffer {
  const name = h.type === 'directory' && !h.name.endsWith('/') ? h.name + '/' : h.name;
  const pax: Buffer[] = [];
  let split = splitUstar(name);
  if (!split) {
    pax.push(paxRecord('path', Buffer.from(name, 'utf8')));
    split = ['', name.replace(/[^\x20-\x7e]/g, '_').slice(0, 100)];
  }
  let linkname = h.linkname;
  if (linkname.length > 100 || !isAscii(linkname)) {
    pax.push(paxRecord('linkpath', Buffer.from(linkname, 'utf8')));
    linkname = '';
  }
  let { uid, gid, size, mtime } = h;
  if (uid > OCTAL_MAX_8) {
    pax.push(paxRecord('uid', Buffer.from(String(uid))));
    uid = 0;
  }
  if (gid > OCTAL_MAX_8) {
    pax.push(paxRecord('gid', Buffer.from(String(gid))));
    gid = 0;
  }
  if (size > OCTAL_MAX_12) {
    pax.push(paxRecord('size', Buffer.from(String(size))));
    size = 0;
  }
  if (mtime < 0 || mtime > OCTAL_MAX_12) {
    pax.push(paxRecord('mtime', Buffer.from(String(mtime))));
    mtime = 0;
  }
  if (h.devmajor > OCTAL_MAX_8 || h.devminor > OCTAL_MAX_8)
    throw new RangeError(`${h.name}: device number too large for a tar header`);
  for (const key of Object.keys(h.xattrs).sort()) pax.push(paxRecord(`SCHILY.xattr.${key}`, h.xattrs[key]));

  const main = ustarBlock({
    name: split[1],
    prefix: split[0],
    flag: FLAG[h.type],
    mode: h.mode,
    uid,
    gid,
    size,
    mtime,
    linkname,
    devmajor: h.devmajor,
    devminor: h.devminor,
  });
  if (pax.length === 0) return main;
  const body = Buffer.concat(pax);
  // A fixed name (as Go's archive/tar does) keeps the output independent of pid and time.
  const paxName = ('PaxHeaders.0/' + split[1]).slice(0, 100);
  const paxHead = ustarBlock({
    name: paxName,
    prefix: '',
    flag: 'x',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: 0,
    linkname: '',
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([paxHead, body, Buffer.alloc(padding(body.length)), main]);
}

export { padding };

// ---- decoding ----

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

export interface RawHeader {
  flag: string;
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
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
