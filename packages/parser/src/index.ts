export * from './types.js';
export { DockerfileError, formatError } from './errors.js';
export { expandWord, expandWords, lex } from './shell/lexer.js';
export type { Env, LexOptions, LexResult } from './shell/lexer.js';
export type { Dockerfile, Instruction, Heredoc, Directives } from './ast.js';
export { parse } from './parse.js';
export type { ParseOptions } from './parse.js';
export { dumpBuildkit } from './dump.js';
