import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Compiled tests live in packages/parser/dist/test; fixtures stay in the sources.
const here = dirname(fileURLToPath(import.meta.url));
export const packageRoot = join(here, '..', '..');
export const repoRoot = join(packageRoot, '..', '..');
/** The shared conformance data sits beside the clone (`<repo>/../shared`). */
export const shared = join(repoRoot, '..', 'shared');
export const fixtures = join(packageRoot, 'test', 'fixtures');
/** Real Dockerfiles from public projects, with what each one says (corpus/README.md). */
export const corpusDir = join(packageRoot, 'test', 'corpus');
