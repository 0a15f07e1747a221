// How the listing commands (ps, images, volume ls) print: docker's column tables and its
// human-readable ages, in one place so that they read alike.

/** Columns padded to the widest cell plus three spaces, as docker's tabwriter does; no trailing blanks. */
export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map(
      (r) =>
        r
          .map((c, i) => c.padEnd(widths[i] + 3))
          .join('')
          .trimEnd() + '\n',
    )
    .join('');
}

const units: [number, string][] = [
  [31536000, 'year'],
  [2592000, 'month'],
  [604800, 'week'],
  [86400, 'day'],
  [3600, 'hour'],
  [60, 'minute'],
  [1, 'second'],
];

/** "3 minutes" since `iso` (ps: "Up 3 minutes"); '' when there is no date. */
export function since(iso: string | undefined): string {
  const t = iso ? Date.parse(iso) : NaN;
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, (Date.now() - t) / 1000);
  for (const [size, name] of units) {
    if (s >= size) {
      const n = Math.floor(s / size);
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  return 'less than a second';
}

/** "3 minutes ago", as docker shows it; '' when there is no date. */
export function ago(iso: string | undefined): string {
  const s = since(iso);
  return s && `${s} ago`;
}

/** Sizes in SI units, as docker prints them: 5.61MB, 120kB. */
export function humanSize(n: number): string {
  const names = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < names.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n < 10 && i > 0 ? n.toFixed(2) : n < 100 && i > 0 ? n.toFixed(1) : Math.round(n)}${names[i]}`;
}
