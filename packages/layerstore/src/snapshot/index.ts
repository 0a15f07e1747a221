export { chainID, chainIDs } from './chain-id.js';
export { Snapshots } from './snapshots.js';
export { Snapshotter, isOpaque } from './snapshotter.js';
export type { ActiveSnapshot, SnapshotMounts, CommitOptions } from './snapshotter.js';
