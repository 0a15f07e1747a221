// Flatten snapshots (bottom first) into a plain directory, for `--output type=local`.
// Each snapshot is re-read as a layer stream and applied with the unpacker in 'apply' mode,
// so flattening obeys exactly the same path-safety rules as unpacking a pulled layer.
import { mkdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { MediaType, type Snapshot } from '../types.js';
import { entriesFromDirectory } from './entries.js';
import { tarStream } from './tar-writer.js';
import { unpackLayer } from './unpack.js';
import { inUserNamespace } from '@tsbuild/sys';

export async function exportRootfs(snapshots: readonly Pick<Snapshot, 'path'>[], dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  for (const s of snapshots) {
    const tar = Readable.from(tarStream(entriesFromDirectory(s.path, { overlay: true })));
    // Devices in a snapshot passed the unpack rules (or were made by a RUN step): allowed here.
    // Rootless, the image's owners would be the user's subordinate ids on the host, files the user
    // cannot remove: the export is the user's own, as with BuildKit rootless or tar run by a user.
    await unpackLayer(tar, MediaType.OciLayer, dest, {
      mode: 'apply',
      allowDevices: true,
      sameOwner: !inUserNamespace(),
    });
  }
}
