// Build tars by hand for tests, including ones no honest writer would produce.
import { encodeHeader, padding, type TarType } from '../../src/layer/tar-header.js';

export interface RawEntry {
  name: string;
  type?: TarType;
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
  devmajor?: number;
  devminor?: number;
  /** Overwrite the type flag byte (for unsupported types). */
  flag?: string;
  /** Extra PAX records, raw (e.g. a path that overrides the ustar name). */
  pax?: Record<string, string>;
  /** A GNU long-name ('L') header before this entry. */
  gnuLongName?: string;
  xattrs?: Record<string, Buffer>;
  uid?: number;
  gid?: number;
  mtime?: number;
}

function block(name: string, flag: string, size: number): Buffer {
  const h = encodeHeader({
    name,
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size,
    mtime: 0,
    linkname: '',
    devmajor: 0,
    devminor: 0,
    xattrs: {},
  });
  return setFlag(h, flag);
}

function setFlag(h: Buffer, flag: string): Buffer {
  const b = Buffer.from(h.subarray(h.length - 512));
  b.write(flag, 156, 1, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return Buffer.concat([h.subarray(0, h.length - 512), b]);
}

function data(b: Buffer): Buffer {
  return Buffer.concat([b, Buffer.alloc(padding(b.length))]);
}

export function buildTar(entries: RawEntry[]): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const content = e.content === undefined ? Buffer.alloc(0) : Buffer.from(e.content);
    if (e.gnuLongName !== undefined) {
      const n = Buffer.from(e.gnuLongName + '\0');
      out.push(block('././@LongLink', 'L', n.length), data(n));
    }
    if (e.pax) {
      const recs = Object.entries(e.pax).map(([k, v]) => {
        const body = ` ${k}=${v}\n`;
        let len = Buffer.byteLength(body) + 1;
        while (String(len).length + Buffer.byteLength(body) > len) len++;
        return Buffer.from(len + body);
      });
      const body = Buffer.concat(recs);
      out.push(block('PaxHeaders.0/x', 'x', body.length), data(body));
    }
    let h = encodeHeader({
      name: e.name,
      type: e.type ?? 'file',
      mode: e.mode ?? 0o644,
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      size: content.length,
      mtime: e.mtime ?? 1_600_000_000,
      linkname: e.linkname ?? '',
      devmajor: e.devmajor ?? 0,
      devminor: e.devminor ?? 0,
      xattrs: e.xattrs ?? {},
    });
    if (e.flag) h = setFlag(h, e.flag);
    out.push(h);
    if (content.length) out.push(data(content));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}
