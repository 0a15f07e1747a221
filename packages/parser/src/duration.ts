// Go's time.ParseDuration, because HEALTHCHECK durations are Go durations
// ("1m30s", "1.5h", "300ms") and the image config stores nanoseconds.
const units: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

export function parseDuration(s: string): number | undefined {
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let total = 0;
  const re = /^(\d*)(?:\.(\d*))?([^\d.]+)/;
  while (rest !== '') {
    const m = re.exec(rest);
    if (!m || (m[1] === '' && (m[2] ?? '') === '')) return undefined;
    const unit = units[m[3]];
    if (unit === undefined) return undefined;
    const whole = Number(m[1] || '0');
    const frac = m[2] ? Number('0.' + m[2]) : 0;
    total += whole * unit + Math.round(frac * unit);
    rest = rest.slice(m[0].length);
  }
  return sign * total;
}
