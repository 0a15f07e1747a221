export * from './registry.js';
export * from './dockerd.js';
export * from './skip.js';
export * from './bridge.js';
export * from './cgroup.js';
export * from './tree.js';
export * from './tls.js';
