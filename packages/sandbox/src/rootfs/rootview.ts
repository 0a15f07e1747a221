// A read-only view of an image's root filesystem as overlayfs would show it, computed from the
// stack of snapshot directories (per-layer diffs with 0/0 char-device whiteouts and opaque
// directories). Used to read /etc/passwd, to see what a COPY destination is, and to read the
// sources of `COPY --from`. Symlinks resolve inside the root, never out of it.
// Every layer directory must exist while the view is used: a path absent from a layer is looked
// for lower down, so a layer directory that vanished (removed while in use) would silently show
// the layers below it, and a wrong result would be cached. That is an error (LayerMissingError).
// Its lstats, readlinks and file reads are synchronous inside the async methods (as the store's SmallFileIO,
// layerstore fsutil.ts): each would otherwise be a thread-pool round trip, a dozen of them one after the other
// to read /etc/passwd and /etc/group when a container is created. Directory listings stay asynchronous.
import {
  closeSync,
  constants as fsc,
  fstatSync,
  lstatSync,
  openSync,
  promises as fsp,
  readFileSync,
  readlinkSync,
  type Stats,
} from 'node:fs';
import { join, posix } from 'node:path';

export interface ViewEntry {
  /** Canonical absolute path inside the root. */
  path: string;
  /** Host path of the topmost copy. */
  host: string;
  stat: Stats;
}

export type OpaqueCheck = (hostDir: string) => boolean;

export class LayerMissingError extends Error {
  constructor(readonly layer: string) {
    super(`layer directory ${layer} is missing: it was removed while in use (see 'tsbuild check')`);
    this.name = 'LayerMissingError';
  }
}

/**
 * How many lookups a fixed view remembers. A step repeats a few (its destination and parents); a walk of a tree
 * (COPY --from's listing, a bind mount's flatten) asks each of its paths once, and remembering them all held
 * ~1 KB per path for the step's life (56 MB for 50,000 files): past this many, the view starts afresh.
 */
export const VIEW_CACHE_MAX = 1024;

export class RootView {
  /** What lstatCanonical found, by path, when the layers cannot change while the view is used (VIEW_CACHE_MAX). */
  private readonly known: Map<string, ViewEntry | undefined> | undefined;

  /**
   * @param layers snapshot dirs, top first
   * @param fixed the layers are finished (a build's snapshots and diffs, never a container's upper dir): a path
   *   is looked up once. A build's step asks for the same few paths several times (its destination as it is
   *   resolved, checked and staged), each look an lstat per layer of the stack.
   */
  constructor(
    private readonly layers: string[],
    private readonly isOpaque: OpaqueCheck,
    fixed = false,
  ) {
    this.known = fixed ? new Map() : undefined;
  }

  /**
   * Whether `hostDir` in `layer` hides the layers below it. The bottom layer hides nothing, so its
   * directories are never asked: the check reads an xattr through ffi-rs, whose native addon costs
   * milliseconds to load, and a single-layer image (`run` of busybox, /etc/passwd) then needs none.
   */
  private hides(layer: string, hostDir: string): boolean {
    return layer !== this.layers[this.layers.length - 1] && this.isOpaque(hostDir);
  }

  /** lstat of a path whose parents contain no symlinks (a canonical path). */
  async lstatCanonical(path: string): Promise<ViewEntry | undefined> {
    if (this.known?.has(path)) return this.known.get(path);
    const found = this.lookUp(path);
    if (this.known) {
      if (this.known.size >= VIEW_CACHE_MAX) this.known.clear();
      this.known.set(path, found);
    }
    return found;
  }

  private lookUp(path: string): ViewEntry | undefined {
    const parts = path.split('/').filter(Boolean);
    for (const layer of this.layers) {
      // A whiteout or a non-directory at any ancestor in this layer hides everything below.
      let hidden = false;
      let opaqueAbove = false;
      for (let i = 0; i < parts.length; i++) {
        const host = join(layer, ...parts.slice(0, i + 1));
        const st = this.lstatIn(layer, host);
        if (!st) break;
        if (isWhiteout(st)) {
          hidden = true;
          break;
        }
        if (i === parts.length - 1) return { path: '/' + parts.join('/'), host, stat: st };
        if (!st.isDirectory()) {
          hidden = true;
          break;
        }
        if (this.hides(layer, host)) opaqueAbove = true;
      }
      if (hidden || opaqueAbove) return undefined;
      if (parts.length === 0) {
        try {
          return { path: '/', host: layer, stat: lstatSync(layer) };
        } catch (e) {
          this.absent(layer, e);
        }
      }
    }
    return undefined;
  }

  /**
   * Resolves a path inside the root. With `followFinal`, a symlink in the last component is
   * followed too. Returns the canonical path (which may not exist).
   */
  async resolve(path: string, followFinal: boolean): Promise<string> {
    let pending = path.split('/').filter(Boolean);
    const done: string[] = [];
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.shift()!;
      if (part === '.') continue;
      if (part === '..') {
        done.pop();
        continue;
      }
      const candidate = '/' + [...done, part].join('/');
      const isLast = pending.length === 0;
      const e = await this.lstatCanonical(candidate);
      if (e && e.stat.isSymbolicLink() && (!isLast || followFinal)) {
        if (++hops > 40) throw new Error(`too many levels of symbolic links at ${candidate}`);
        const target = readlinkSync(e.host);
        if (target.startsWith('/')) done.length = 0;
        pending = [...target.split('/').filter(Boolean), ...pending];
        continue;
      }
      done.push(part);
    }
    return '/' + done.join('/');
  }

  async lstat(path: string): Promise<ViewEntry | undefined> {
    return this.lstatCanonical(await this.resolve(path, false));
  }

  async stat(path: string): Promise<ViewEntry | undefined> {
    return this.lstatCanonical(await this.resolve(path, true));
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    // In a running container's upper dir (exec's user lookup) the file, or a directory above it, may be replaced
    // between the lookup and the open: by a FIFO (opened without waiting), or by a symlink, which the host's open
    // would follow out of the root. What is opened must be the file that was looked up (its device and inode);
    // otherwise it is looked up again (a file replaced by a rename, as useradd does), a few times.
    for (let attempt = 0; attempt < 3; attempt++) {
      const e = await this.stat(path);
      if (!e || !e.stat.isFile()) return undefined;
      let fd: number;
      try {
        fd = openSync(e.host, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
      } catch (x) {
        if (['ENOENT', 'ENOTDIR', 'ELOOP', 'ENXIO'].includes((x as NodeJS.ErrnoException).code ?? '')) continue;
        throw x;
      }
      try {
        const st = fstatSync(fd);
        if (st.isFile() && st.dev === e.stat.dev && st.ino === e.stat.ino) return readFileSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    return undefined;
  }

  /** Names in a directory (canonical path), merged across layers, whiteouts applied. */
  async readdir(path: string): Promise<string[]> {
    const parts = path.split('/').filter(Boolean);
    const names = new Set<string>();
    const gone = new Set<string>();
    for (const layer of this.layers) {
      const host = join(layer, ...parts);
      // The parents first: this layer may hold one as a symlink (to a host dir) that a higher layer
      // replaced by a directory, and an lstat of the full path would list the host dir through it.
      const parents = await this.parentsIn(layer, parts);
      if (parents === 'hidden') break;
      if (parents === 'absent') continue;
      const st = this.lstatIn(layer, host);
      if (!st) {
        if (parents === 'opaque') break;
        continue;
      }
      if (isWhiteout(st) || !st.isDirectory()) break;
      for (const d of await fsp.readdir(host, { withFileTypes: true })) {
        if (names.has(d.name) || gone.has(d.name)) continue;
        if (d.isCharacterDevice() && isWhiteout(lstatSync(join(host, d.name)))) gone.add(d.name);
        else names.add(d.name);
      }
      if (parents === 'opaque' || this.hides(layer, host)) break;
    }
    return [...names].sort();
  }

  /**
   * Whether the parents of `parts` are directories in `layer`, looked at shallowest first (so no
   * lstat goes through a link): 'absent' (one is missing; look lower), 'hidden' (a whiteout or a
   * non-directory ends the path here and below), 'opaque' (all directories, one of them opaque: no
   * layer below counts), or 'dirs'.
   */
  private async parentsIn(layer: string, parts: string[]): Promise<'absent' | 'hidden' | 'opaque' | 'dirs'> {
    let opaque = false;
    for (let i = 1; i < parts.length; i++) {
      const host = join(layer, ...parts.slice(0, i));
      const st = this.lstatIn(layer, host);
      if (!st) return opaque ? 'hidden' : 'absent';
      if (isWhiteout(st) || !st.isDirectory()) return 'hidden';
      if (this.hides(layer, host)) opaque = true;
    }
    return opaque ? 'opaque' : 'dirs';
  }

  /**
   * lstat of `host` below `layer`, undefined if it is absent there. No Error is made for an absent path (a
   * thrown ENOENT is an Error built and caught, and a path is absent from most layers of a tall stack).
   */
  private lstatIn(layer: string, host: string): Stats | undefined {
    let st: Stats | undefined;
    try {
      st = lstatSync(host, { throwIfNoEntry: false });
    } catch (e) {
      this.absent(layer, e);
      return undefined;
    }
    if (!st) this.absent(layer, undefined);
    return st;
  }

  /** After a failed lstat below `layer` (`e` undefined: ENOENT): absent is fine, unless the layer itself is gone. */
  private absent(layer: string, e: unknown): void {
    const code = e === undefined ? 'ENOENT' : (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
    try {
      lstatSync(layer);
    } catch {
      throw new LayerMissingError(layer);
    }
  }
}

export function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

export function joinInRoot(...parts: string[]): string {
  return posix.normalize('/' + parts.join('/'));
}
