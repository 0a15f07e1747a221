// POSIX path helpers (the image is Linux whatever the host is).

export function clean(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!abs) out.push('..');
      continue;
    }
    out.push(part);
  }
  const s = (abs ? '/' : '') + out.join('/');
  return s === '' ? '.' : s;
}

/** A path made absolute against `dir` and cleaned. */
export function resolve(dir: string, p: string): string {
  return clean(p.startsWith('/') ? p : `${dir}/${p}`);
}

/** Like resolve, but a trailing '/' (or '/.') is kept: it means "into a directory". */
export function resolveKeepSlash(dir: string, p: string): string {
  const r = resolve(dir, p);
  const slash = p.endsWith('/') || p.endsWith('/.') || p === '.';
  return slash && !r.endsWith('/') ? r + '/' : r;
}
