import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Compiled tests live in packages/parser/dist/test; fixtures stay in the sources.
const here = dirname(fileURLToPath(import.meta.url));
export const packageRoot = join(here, '..', '..');
export const fixtures = join(packageRoot, 'test', 'fixtures');
/** BuildKit's parser and shell test data, copied into the repository (see each folder's README). */
export const conformance = join(packageRoot, 'test', 'conformance');
/** Real Dockerfiles from public projects, with what each one says (corpus/README.md). */
export const corpusDir = join(packageRoot, 'test', 'corpus');
