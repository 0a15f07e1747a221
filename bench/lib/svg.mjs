// A small SVG line chart, enough for the bench's scaling charts: axes with ticks and labels, a title, one
// polyline per series with its points marked, and a legend. No dependency: the bench must run offline.
//
//   lineChart({ title, xLabel, yLabel, series: [{ name, points: [[x, y], …], dashed?, color? }], logX? })
//     → SVG text
// (color: an index into the palette, so that related series share a colour; default: the series' position)
//
// x is logarithmic when asked (the workloads grow by ×4–×10 per step) with a tick at every x a series has;
// y is linear from 0 with "nice" ticks. Points whose y is not a finite number are left out (a failed or
// missing measurement), and a series with no point left is listed in the legend as "(no data)".

const W = 720,
  H = 400;
const M = { left: 70, right: 210, top: 44, bottom: 56 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
// Tick labels: integers as such, other values to three significant digits (0.25, 1.5, 12.5).
const num = (v) => (Number.isInteger(v) ? String(v) : Number(v.toPrecision(3)).toString());

/** Tick step for [0, max]: 1, 2 or 5 × 10^k, giving about five ticks. */
export function niceStep(max) {
  if (!(max > 0)) return 1;
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
}

/** Short x tick labels: 200000 → 200k. */
export function shortNum(v) {
  if (v >= 1e6 && v % 1e5 === 0) return `${v / 1e6}M`;
  if (v >= 1e3 && v % 100 === 0) return `${v / 1e3}k`;
  return String(v);
}

export function lineChart({ title, xLabel, yLabel, series, logX = false }) {
  const pts = series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const xs = [...new Set(series.flatMap((s) => s.points.map(([x]) => x)).filter(Number.isFinite))].sort(
    (a, b) => a - b,
  );
  const pw = W - M.left - M.right,
    ph = H - M.top - M.bottom;
  const xmin = xs[0] ?? 0,
    xmax = xs[xs.length - 1] ?? 1;
  const useLog = logX && xmin > 0 && xmax > xmin;
  const fx = (x) => {
    if (xmax === xmin) return M.left + pw / 2;
    const t = useLog ? (Math.log(x) - Math.log(xmin)) / (Math.log(xmax) - Math.log(xmin)) : (x - xmin) / (xmax - xmin);
    return M.left + t * pw;
  };
  const ymax0 = Math.max(0, ...pts.map(([, y]) => y));
  const step = niceStep(ymax0 || 1);
  const ymax = Math.max(step, Math.ceil(ymax0 / step) * step);
  const fy = (y) => M.top + ph - (y / ymax) * ph;
  const o = [];
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      'font-family="sans-serif" font-size="12">',
  );
  o.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  o.push(
    `<text x="${M.left + pw / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
  );
  // y grid, ticks and labels
  for (let y = 0; y <= ymax + step / 1e6; y += step) {
    const py = fy(y).toFixed(1);
    o.push(`<line x1="${M.left}" y1="${py}" x2="${M.left + pw}" y2="${py}" stroke="#e5e5e5"/>`);
    o.push(`<text x="${M.left - 8}" y="${py}" text-anchor="end" dominant-baseline="middle">${esc(num(y))}</text>`);
  }
  // x ticks at the measured values
  for (const x of xs) {
    const px = fx(x).toFixed(1);
    o.push(`<line x1="${px}" y1="${M.top + ph}" x2="${px}" y2="${M.top + ph + 5}" stroke="#333"/>`);
    o.push(`<text x="${px}" y="${M.top + ph + 18}" text-anchor="middle">${esc(shortNum(x))}</text>`);
  }
  // axes
  o.push(`<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${M.top + ph}" stroke="#333"/>`);
  o.push(`<line x1="${M.left}" y1="${M.top + ph}" x2="${M.left + pw}" y2="${M.top + ph}" stroke="#333"/>`);
  o.push(
    `<text x="${M.left + pw / 2}" y="${H - 14}" text-anchor="middle">` +
      `${esc(xLabel)}${useLog ? ' (log scale)' : ''}</text>`,
  );
  o.push(`<text transform="translate(18 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  // series and legend
  series.forEach((s, i) => {
    const color = COLORS[(s.color ?? i) % COLORS.length];
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0]);
    if (p.length > 1) {
      const d = p.map(([x, y]) => `${fx(x).toFixed(1)},${fy(y).toFixed(1)}`).join(' ');
      o.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${d}"/>`);
    }
    for (const [x, y] of p)
      o.push(`<circle cx="${fx(x).toFixed(1)}" cy="${fy(y).toFixed(1)}" r="3.5" fill="${color}"/>`);
    const ly = M.top + 10 + i * 20;
    const lx = M.left + pw + 16;
    o.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`);
    o.push(
      `<text x="${lx + 30}" y="${ly}" dominant-baseline="middle">${esc(s.name)}${p.length ? '' : ' (no data)'}</text>`,
    );
  });
  o.push('</svg>');
  return o.join('\n') + '\n';
}
