// The `# check=skip=A,B;error=true` directive (or BUILDKIT_DOCKERFILE_CHECK): which build checks to skip
// and whether a warning fails the build. Split out of lint.ts: it parses a setting, it checks nothing.

export interface LintConfig {
  skip: Set<string>;
  skipAll: boolean;
  /** `error=true`: a build with warnings fails. */
  error: boolean;
}

/** `skip=A,B;error=true`, as BuildKit reads the `# check=` directive; throws a message for a bad one. */
export function parseCheckOption(text: string): LintConfig {
  const config: LintConfig = { skip: new Set(), skipAll: false, error: false };
  const value = text.trim();
  if (value === '') return config;
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new Error(`invalid check option "${part}"`);
    const key = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (key === 'skip') {
      if (v === 'all') config.skipAll = true;
      else for (const r of v.split(',')) if (r.trim()) config.skip.add(r.trim());
    } else if (key === 'error') {
      const b = { true: true, '1': true, t: true, TRUE: true, false: false, '0': false, f: false, FALSE: false }[v];
      if (b === undefined) throw new Error(`failed to parse check option "${part}": "${v}" is not true or false`);
      config.error = b;
    } else if (key === 'experimental') {
      // BuildKit's experimental rules: none of them is implemented here, so there is nothing to enable.
    } else throw new Error(`invalid check option "${key}"`);
  }
  return config;
}
