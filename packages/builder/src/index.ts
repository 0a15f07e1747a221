export { main } from './cli/main.js';
export { build, type BuildRequest, type BuildResult } from './build/build.js';
export { BuildError } from './errors.js';
export type { ExplainRow } from './build/state.js';
