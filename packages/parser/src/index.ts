export * from './types.js';
export { DockerfileError, formatError } from './errors.js';
export { expandWord, expandWords, lex } from './shell/lexer.js';
export type { Env, LexOptions, LexResult } from './shell/lexer.js';
