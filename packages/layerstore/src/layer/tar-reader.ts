// A streaming tar reader for untrusted layers. It yields one entry at a time with its body
// as an async iterable; unread body bytes are skipped before the next header. PAX values
// stay bytes (binary xattrs survive). Anything it does not understand is an error, not a guess.
import { decodeBlock, decodePax, isZeroBlock, typeOfFlag, TarFormatError, TarUnsupportedError } from './tar-decode.js';
import { BLOCK, type TarHeader } from './tar-header.js';

/** Pulls exact byte counts out of a stream of arbitrary chunks. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private length = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      if (b.length) {
        this.chunks.push(b);
        this.length += b.length;
      }
    }
    return this.length >= n;
  }

  /** Up to max bytes of whatever is buffered (pulling once if empty); empty at end of stream. */
  async some(max: number): Promise<Buffer> {
    if (this.length === 0 && !(await this.fill(1))) return Buffer.alloc(0);
    const head = this.chunks[0];
    if (head.length <= max) {
      this.chunks.shift();
      this.length -= head.length;
      return head;
    }
    this.chunks[0] = head.subarray(max);
    this.length -= max;
    return head.subarray(0, max);
  }

  async exact(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) return undefined;
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const b = await this.some(need);
      parts.push(b);
      need -= b.length;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  async skip(n: number): Promise<void> {
    while (n > 0) {
      const b = await this.some(n);
      if (b.length === 0) throw new TarFormatError('unexpected end of archive');
      n -= b.length;
    }
  }

  async drainRest(): Promise<void> {
    while ((await this.some(1 << 20)).length > 0) {
      /* trailing bytes after the end marker */
    }
  }
}

export interface TarEntry {
  header: TarHeader;
  body: AsyncIterable<Buffer>;
}

const MAX_META = 1 << 20; // PAX / GNU long-name bodies larger than this are not names

function xattrsFromPax(pax: Map<string, Buffer>): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of pax) {
    if (k.startsWith('SCHILY.xattr.')) out[k.slice('SCHILY.xattr.'.length)] = v;
    else if (k.startsWith('LIBARCHIVE.xattr.'))
      out[decodeURIComponent(k.slice('LIBARCHIVE.xattr.'.length))] = Buffer.from(v.toString('ascii'), 'base64');
  }
  return out;
}

function paxNumber(pax: Map<string, Buffer>, key: string, fallback: number): number {
  const v = pax.get(key);
  if (v === undefined) return fallback;
  const n = Number(v.toString('ascii'));
  if (!Number.isFinite(n) || (n < 0 && key !== 'mtime')) throw new TarFormatError(`bad PAX ${key}`);
  return key === 'mtime' ? Math.floor(n) : n;
}

/**
 * Read a tar stream. Also returns (via onEnd) nothing: callers that need the diffID hash the
 * bytes before they reach here.
 */
export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<TarEntry> {
  const q = new ByteQueue(source[Symbol.asyncIterator]());
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await q.exact(BLOCK);
    if (!block) throw new TarFormatError('unexpected end of archive (no end marker)');
    if (isZeroBlock(block)) {
      await q.drainRest();
      return;
    }
    const raw = decodeBlock(block);
    const padded = raw.size + ((BLOCK - (raw.size % BLOCK)) % BLOCK);
    if (raw.flag === 'x' || raw.flag === 'g' || raw.flag === 'L' || raw.flag === 'K') {
      if (raw.size > MAX_META) throw new TarFormatError(`${raw.name}: metadata header too large`);
      const body = await q.exact(padded);
      if (!body) throw new TarFormatError('unexpected end of archive');
      const data = body.subarray(0, raw.size);
      if (raw.flag === 'x') pax = decodePax(data);
      else if (raw.flag === 'L') longName = data.toString('utf8').replace(/\0+$/, '');
      else if (raw.flag === 'K') longLink = data.toString('utf8').replace(/\0+$/, '');
      // 'g' (global PAX) carries nothing a layer needs (comments, mtime defaults): ignored as containerd does.
      continue;
    }
    const name = pax?.get('path')?.toString('utf8') ?? longName ?? raw.name;
    const type = typeOfFlag(raw.flag);
    if (!type) throw new TarUnsupportedError(name, `unsupported tar entry type ${JSON.stringify(raw.flag)}`);
    if (pax && [...pax.keys()].some((k) => k.startsWith('GNU.sparse.')))
      throw new TarUnsupportedError(name, 'sparse files are not supported');
    const header: TarHeader = {
      name,
      type,
      mode: raw.mode & 0o7777,
      uid: pax ? paxNumber(pax, 'uid', raw.uid) : raw.uid,
      gid: pax ? paxNumber(pax, 'gid', raw.gid) : raw.gid,
      size: pax ? paxNumber(pax, 'size', raw.size) : raw.size,
      mtime: pax ? paxNumber(pax, 'mtime', raw.mtime) : raw.mtime,
      linkname: pax?.get('linkpath')?.toString('utf8') ?? longLink ?? raw.linkname,
      devmajor: raw.devmajor,
      devminor: raw.devminor,
      xattrs: pax ? xattrsFromPax(pax) : {},
    };
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    // Only regular files carry data; a size on anything else is ignored as GNU tar does.
    const dataSize = type === 'file' ? header.size : 0;
    if (type !== 'file') header.size = 0;
    let remaining = dataSize;
    const body: AsyncIterable<Buffer> = {
      async *[Symbol.asyncIterator]() {
        while (remaining > 0) {
          const b = await q.some(Math.min(remaining, 1 << 20));
          if (b.length === 0) throw new TarFormatError(`${name}: unexpected end of archive in file data`);
          remaining -= b.length;
          yield b;
        }
      },
    };
    yield { header, body };
    await q.skip(remaining + ((BLOCK - (dataSize % BLOCK)) % BLOCK));
    remaining = 0;
  }
}
