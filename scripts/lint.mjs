#!/usr/bin/env node
// `pnpm run lint`: the format check, the type-aware lint and the import-cycle check, each run even when
// an earlier one failed, so one run shows every problem. Exit status non-zero when any failed.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);

// Each package's src/index.ts is an entry; dist/ is left out so a package's compiled copy (what another
// package's import resolves to) is not counted twice. Type-only imports count too: a cycle of types is
// still two modules that cannot be understood apart.
const checks = [
  ['format (prettier)', bin('prettier'), ['--check', '--log-level', 'warn', '**/*.{ts,mts,mjs,js,cjs}']],
  ['lint (eslint)', bin('eslint'), ['--max-warnings', '0', '.']],
  [
    'import cycles (dpdm)',
    bin('dpdm'),
    [
      '--no-warning',
      '--no-tree',
      '--exit-code',
      'circular:1',
      '--exclude',
      '/dist/|node_modules',
      'packages/*/src/index.ts',
    ],
  ],
];

let failed = 0;
for (const [name, cmd, args] of checks) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  const ok = r.status === 0;
  if (!ok) failed++;
  console.log(`${ok ? 'ok' : 'FAILED'}: ${name}`);
}
process.exit(failed ? 1 : 0);
