// `archive`: images as one tar file.
//   write(..., { format: 'oci' })    an OCI image layout as a tar (what `skopeo copy oci-archive:` reads)
//   write(..., { format: 'docker' }) what docker 25+ `docker save` writes: an OCI layout AND a docker
//                                    archive (manifest.json with Config/RepoTags/Layers pointing at
//                                    blobs/sha256/<hex>, plus `repositories`), so both `docker load`
//                                    and OCI tools accept it
//   stream(store, images, opts)      either, as a stream (docker's image-load endpoint)
//   load(store, file)                imports any of those, old `docker save` archives (v1.2:
//                                    <id>/layer.tar, <id>/json, <config>.json), and gzipped archives
// Tars are streamed with tar-stream; layer bytes never sit in memory. Every blob that comes in is
// verified as it streams into the store (blobs/sha256/<hex> members against their name; old-format
// layers get their digest computed, then the whole image goes through validate()).
export { write, stream } from './write.js';
export { load, memberName, type LoadedImage } from './load.js';
export type { ArchiveFormat, DockerManifestEntry } from './tar.js';
