export { chainID, chainIDs } from './chain-id.js';
export { Snapshots } from './snapshots.js';
