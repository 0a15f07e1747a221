// A listed build context: the record tsbuild-walk prints (native/walk.c describes the bytes),
// or the same record made by the JS walker for small contexts. Read in place, lazily: a cached
// rebuild looks at a handful of entries and signatures, never at 20,000 names.
//
// Entries are addressed by their byte offset in the record; names are bytes (Linux names are),
// decoded for display and .dockerignore with invalid UTF-8 kept lossless (see decodeName).

export const Magic = 'TSBWALK1';
export const EntryHead = 56;
export const TableRow = 48;
export const None = 0xffffffff;

export const enum Flag {
  /** A regular file changed so recently that its stat cannot vouch for its content. */
  Racy = 1,
  /** A directory that could not be opened or read. */
  Unreadable = 2,
  /** A directory with a racy file somewhere below it. */
  RacyBelow = 4,
  /** A directory not looked into: .dockerignore leaves it out whole. */
  Pruned = 8,
}

const S_IFMT = 0o170000;
export type Kind = 'file' | 'dir' | 'symlink' | 'other';

export class Listing {
  private constructor(
    readonly buf: Buffer,
    private readonly tableAt: number,
    readonly dirs: number,
  ) {}

  static parse(buf: Buffer): Listing {
    const bad = (why: string) => new Error(`context listing is malformed (${why})`);
    if (buf.length < 24 || buf.toString('latin1', 0, 8) !== Magic || buf.toString('latin1', buf.length - 4) !== 'TSBW')
      throw bad('magic');
    const tableAt = Number(buf.readBigUInt64LE(buf.length - 16));
    const dirs = buf.readUInt32LE(buf.length - 8);
    if (dirs < 1 || tableAt + dirs * TableRow !== buf.length - 16) throw bad('table');
    return new Listing(buf, tableAt, dirs);
  }

  /** Entries in the whole listing. */
  entryCount(): number {
    let n = 0;
    for (let d = 0; d < this.dirs; d++) n += this.count(d);
    return n;
  }

  // ---- directories, by index (0 is the context itself)
  block(dir: number): number {
    return Number(this.buf.readBigUInt64LE(this.tableAt + dir * TableRow));
  }
  count(dir: number): number {
    return this.buf.readUInt32LE(this.tableAt + dir * TableRow + 8);
  }
  dirFlags(dir: number): number {
    return this.buf.readUInt32LE(this.tableAt + dir * TableRow + 12);
  }
  /** Offset of the 32-byte stat signature of the subtree. */
  sigAt(dir: number): number {
    return this.tableAt + dir * TableRow + 16;
  }
  sig(dir: number): Buffer {
    return this.buf.subarray(this.sigAt(dir), this.sigAt(dir) + 32);
  }

  /** Offsets of a directory's entries, in name-byte order. */
  entries(dir: number): number[] {
    const out: number[] = [];
    let off = this.block(dir);
    for (let n = this.count(dir); n > 0; n--) {
      out.push(off);
      off = this.next(off);
    }
    return out;
  }

  // ---- entries, by offset
  next(off: number): number {
    return off + ((EntryHead + this.nameLen(off) + this.linkLen(off) + 7) & ~7);
  }
  mode(off: number): number {
    return this.buf.readUInt32LE(off);
  }
  kind(off: number): Kind {
    switch (this.mode(off) & S_IFMT) {
      case 0o100000:
        return 'file';
      case 0o040000:
        return 'dir';
      case 0o120000:
        return 'symlink';
      default:
        return 'other';
    }
  }
  flags(off: number): number {
    return this.buf.readUInt32LE(off + 4);
  }
  size(off: number): number {
    return this.buf.readUInt32LE(off + 16) + this.buf.readUInt32LE(off + 20) * 2 ** 32;
  }
  mtimeMs(off: number): number {
    return Number(this.buf.readBigInt64LE(off + 24)) * 1000 + Math.floor(this.buf.readUInt32LE(off + 40) / 1e6);
  }
  /** The directory index of a directory entry (None for anything else); see dirFlags for Unreadable. */
  child(off: number): number {
    return this.buf.readUInt32LE(off + 48);
  }
  nameLen(off: number): number {
    return this.buf.readUInt16LE(off + 52);
  }
  linkLen(off: number): number {
    return this.buf.readUInt16LE(off + 54);
  }
  name(off: number): Buffer {
    return this.buf.subarray(off + EntryHead, off + EntryHead + this.nameLen(off));
  }
  /** The name as a Map key: latin1 maps bytes to chars one to one. */
  nameKey(off: number): string {
    return this.buf.toString('latin1', off + EntryHead, off + EntryHead + this.nameLen(off));
  }
  nameText(off: number): string {
    return decodeName(this.buf, off + EntryHead, off + EntryHead + this.nameLen(off));
  }
  link(off: number): Buffer {
    const at = off + EntryHead + this.nameLen(off);
    return this.buf.subarray(at, at + this.linkLen(off));
  }
  /** The inode number (hard links to one file share it; the device is not listed). */
  ino(off: number): bigint {
    return this.buf.readBigUInt64LE(off + 8);
  }
  /** The 40 bytes that vouch for a file's content: inode, size, mtime, ctime. */
  statAt(off: number): number {
    return off + 8;
  }

  /** Entry offsets of the directories find() has searched: a glob's matches each look up their path. */
  private readonly searched = new Map<number, number[]>();

  /** The entry called `name` (bytes) in a directory, by binary search over its sorted entries. */
  find(dir: number, name: Buffer): number | undefined {
    let offsets = this.searched.get(dir);
    if (!offsets) this.searched.set(dir, (offsets = this.entries(dir)));
    let lo = 0;
    let hi = offsets.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const off = offsets[mid];
      const c = this.buf.compare(name, 0, name.length, off + EntryHead, off + EntryHead + this.nameLen(off));
      if (c === 0) return off;
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return undefined;
  }
}

/**
 * UTF-8 with each byte of an invalid sequence mapped to U+DC80..U+DCFF (Python's
 * "surrogateescape"): valid UTF-8 never decodes to a lone surrogate, so distinct names stay
 * distinct, and encodeName gives the bytes back.
 */
export function decodeName(buf: Buffer, start = 0, end = buf.length): string {
  const fast = buf.toString('utf8', start, end);
  if (!fast.includes('\uFFFD')) return fast;
  let out = '';
  let i = start;
  while (i < end) {
    const b = buf[i];
    const n = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    let ok = n > 0 && i + n <= end;
    for (let k = 1; ok && k < n; k++) ok = (buf[i + k] & 0xc0) === 0x80;
    if (ok && n === 3) {
      const c1 = buf[i + 1];
      ok = !(b === 0xe0 && c1 < 0xa0) && !(b === 0xed && c1 >= 0xa0); // overlong, surrogates
    }
    if (ok && n === 4) {
      const c1 = buf[i + 1];
      ok = !(b === 0xf0 && c1 < 0x90) && !(b === 0xf4 && c1 >= 0x90); // overlong, > U+10FFFF
    }
    if (!ok) {
      out += String.fromCharCode(0xdc00 + b);
      i++;
      continue;
    }
    out += buf.toString('utf8', i, i + n);
    i += n;
  }
  return out;
}

const escaped = /[\uDC80-\uDCFF]/;

/** Whether a decoded name carries bytes that are not UTF-8. */
export function isEscaped(name: string): boolean {
  return escaped.test(name);
}

/** The bytes of a name made by decodeName. */
export function encodeName(name: string): Buffer {
  if (!escaped.test(name)) return Buffer.from(name);
  const parts: Buffer[] = [];
  let run = '';
  for (const ch of name) {
    const c = ch.charCodeAt(0);
    if (ch.length === 1 && c >= 0xdc80 && c <= 0xdcff) {
      if (run) parts.push(Buffer.from(run));
      run = '';
      parts.push(Buffer.of(c - 0xdc00));
    } else run += ch;
  }
  if (run) parts.push(Buffer.from(run));
  return Buffer.concat(parts);
}

/** A name as a person should read it: control characters and undecodable bytes escaped. */
export function displayName(name: string): string {
  return name.replace(/[\x00-\x1f\x7f\uDC80-\uDCFF]/g, (ch) => {
    const c = ch.charCodeAt(0);
    return `\\x${(c >= 0xdc80 ? c - 0xdc00 : c).toString(16).padStart(2, '0')}`;
  });
}
