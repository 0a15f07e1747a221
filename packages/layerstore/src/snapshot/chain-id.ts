// OCI ChainID: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
// It names a stack of layers, so a snapshot keyed by it is valid only on top of that stack.
import { createHash } from 'node:crypto';
import type { Digest } from '../types.js';

/** ChainIDs of every prefix: [ChainID(L0), ChainID(L0..L1), ...]. */
export function chainIDs(diffIDs: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (let i = 0; i < diffIDs.length; i++) {
    out.push(
      i === 0
        ? diffIDs[0]
        : `sha256:${createHash('sha256')
            .update(`${out[i - 1]} ${diffIDs[i]}`)
            .digest('hex')}`,
    );
  }
  return out;
}

/** The ChainID of the whole stack (the last of chainIDs). */
export function chainID(diffIDs: readonly Digest[]): Digest {
  if (diffIDs.length === 0) throw new RangeError('chainID of no layers');
  return chainIDs(diffIDs)[diffIDs.length - 1];
}
