export * from './types.js';
export * from './reference.js';
