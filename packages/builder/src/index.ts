export { main } from './cli/main.js';
export { build, type BuildRequest, type BuildResult } from './solver/build.js';
export { BuildError } from './errors.js';
export type { ExplainRow } from './solver/state.js';
