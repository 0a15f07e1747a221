// POSIX ustar + PAX header encoding (decoding is in tar-decode.ts), written here rather than taken from
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

/** One ustar header block's fields as they stand in the block: what the encoder writes and the decoder reads. */
export interface RawHeader extends Omit<TarHeader, 'type' | 'xattrs'> {
  flag: string;
}

const FLAG: Record<TarType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  directory: '5',
  fifo: '6',
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

/**
 * `value` in octal, zero-padded to width-1 digits, then NUL; returns the sum of the bytes written (for the
 * checksum). Digit by digit into the block: this runs six times per entry, and a string per field (toString,
 * padStart, write) was most of a 20,000-file layer's header cost. Callers keep values within the width (larger
 * ones go in PAX records).
 */
function writeOctal(buf: Buffer, off: number, width: number, value: number): number {
  let v = value;
  let sum = 0;
  for (let i = off + width - 2; i >= off; i--) {
    // Integer ops while the value fits 31 bits (nearly always: a size or mtime past that takes the float path).
    const small = v <= 0x7fffffff;
    const d = 0x30 + (small ? v & 7 : v % 8);
    buf[i] = d;
    sum += d;
    v = small ? v >>> 3 : Math.floor(v / 8);
  }
  buf[off + width - 1] = 0;
  return sum;
}

/**
 * Writes `s` at `off` as UTF-8 cut at `max` bytes (as Buffer.write does), on zeroed bytes; returns the sum of the
 * bytes written. Printable ASCII, which nearly every name is, goes byte by byte without Buffer.write's call.
 */
function writeText(buf: Buffer, s: string, off: number, max: number): number {
  let sum = 0;
  if (s.length <= max && isAscii(s)) {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      buf[off + i] = c;
      sum += c;
    }
    return sum;
  }
  const n = buf.write(s, off, max, 'utf8');
  for (let i = off; i < off + n; i++) sum += buf[i];
  return sum;
}

function paxRecord(key: string, value: Buffer): Buffer {
  // "LEN key=value\n" where LEN counts itself.
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length > len) len++;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

const MAGIC = Buffer.from('ustar\u000000', 'ascii');
let MAGIC_SUM = 0;
for (const b of MAGIC) MAGIC_SUM += b;
/** The checksum field counts as eight spaces while the sum is taken. */
const CHKSUM_SPACES = 8 * 0x20;

/**
 * One ustar header block, in `into` (512 zero bytes) or a new block. The checksum is summed as the fields are
 * written rather than over the 512 bytes afterwards: the block is all zeros but for them.
 */
function ustarBlock(h: RawHeader & { prefix: string }, into?: Buffer): Buffer {
  const b = into ?? Buffer.alloc(BLOCK);
  let sum = CHKSUM_SPACES + MAGIC_SUM;
  sum += writeText(b, h.name, 0, 100);
  sum += writeOctal(b, 100, 8, h.mode & 0o7777);
  sum += writeOctal(b, 108, 8, h.uid);
  sum += writeOctal(b, 116, 8, h.gid);
  sum += writeOctal(b, 124, 12, h.size);
  sum += writeOctal(b, 136, 12, h.mtime);
  sum += writeText(b, h.flag, 156, 1);
  sum += writeText(b, h.linkname, 157, 100);
  MAGIC.copy(b, 257);
  sum += writeOctal(b, 329, 8, h.devmajor);
  sum += writeOctal(b, 337, 8, h.devminor);
  sum += writeText(b, h.prefix, 345, 155);
  writeOctal(b, 148, 7, sum);
  b[155] = 0x20;
  return b;
}

function padding(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

/**
 * The header block(s) of one entry: an optional PAX extended header, then the ustar header. `scratch` (512 bytes,
 * its content ignored) is where a header of one block is encoded, and returned, rather than a new buffer: for
 * a caller that copies it out before the next call (the tar writer).
 */
export function encodeHeader(h: TarHeader, scratch?: Buffer): Buffer {
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

  const main = ustarBlock(
    {
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
    },
    pax.length === 0 && scratch ? scratch.fill(0, 0, BLOCK) : undefined,
  );
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
