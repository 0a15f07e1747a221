export * from './registry.js';
export * from './dockerd.js';
