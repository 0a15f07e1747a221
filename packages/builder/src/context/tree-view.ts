// The build context's tree as a COPY's rules see it (.dockerignore, --exclude): which entries of a listed
// directory are copied, which directories are looked into, their host paths, and the errors a tree that
// cannot be read gives. TreeHasher (tree.ts) hashes what this view shows.
import { closeSync, fstatSync, openSync, constants as fsc } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { O_CLOEXEC, openat2 } from '@tsbuild/sys';
import { BuildError } from '../errors.js';
import type { IgnoreMatcher } from './ignore.js';
import { decodeName, displayName, Flag, isEscaped, None, type Listing } from './listing.js';
import type { StatCache } from './statcache.js';

const errnoNames = new Map(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));
export const SLASH = Buffer.from('/');
/** Cleared where openat2 is missing (a kernel before 5.6, a seccomp filter): then openFile opens by path. */
let haveOpenat2 = true;

/** What a COPY reads of a directory besides the directory itself. */
export interface Rules {
  ignore: IgnoreMatcher;
  /** --exclude patterns, matched against paths relative to the item. */
  exclude: IgnoreMatcher | undefined;
}

/** A directory of the context named by a COPY source. */
export interface TreeItem {
  /** Context-relative path ('' for the context itself), and the same as bytes. */
  rel: string;
  relBytes: Buffer;
  /** Its directory index in the listing. */
  dir: number;
  mode: number;
  mtimeMs: number;
}

/** One file of a copied tree, in the order and shape a COPY and its key use. */
export interface TreeFile {
  /** Path below the item ('' for the item itself). */
  rel: string;
  kind: 'file' | 'dir' | 'symlink';
  /** Host path; undefined when the name is not UTF-8 (Node's string paths cannot name it). */
  host: string | undefined;
  mode: number;
  mtimeMs: number;
  size: number;
  linkname?: string;
  hash?: string;
  /** A file's inode number: files of the item that share one may be hard links (copy.ts). */
  ino?: bigint;
}

/** One directory below the item as the rules see it, and how it must be treated. */
export interface Visit {
  dir: number;
  /**
   * Path key for the stat cache: the latin1 of the path's bytes, so it is the bytes too (`pathBytes`). Not a
   * Buffer kept beside it: one per directory was ~100 bytes of heap each, 39,200 of them in a 200,000-file
   * context, live while its content digest was planned (bench/RESULTS.md, "Memory at 200,000 files, session 6").
   */
  key: string;
  /** Decoded context-relative path, when names are needed (rules or expansion). */
  rel: string | undefined;
}

/** A visited directory's context-relative path as bytes. */
export function pathBytes(visit: Visit): Buffer {
  return Buffer.from(visit.key, 'latin1');
}

export class TreeView {
  protected readonly dirBytes: Buffer;

  constructor(
    protected readonly listing: Listing,
    protected readonly stats: StatCache,
    protected readonly contextDir: string,
  ) {
    this.dirBytes = Buffer.from(contextDir);
  }

  /**
   * Calls `fn` for each child of a directory that the COPY can see: `included` when the entry
   * itself is copied, `sub` for a directory to look into. The same rules, in the same order, as
   * the flat walk of earlier versions: a directory .dockerignore excludes with nothing
   * re-included below is skipped whole; other excluded entries are left out one by one;
   * sockets, fifos and devices are not copied.
   */
  protected visitChildren(
    item: TreeItem,
    visit: Visit,
    rules: Rules,
    needNames: boolean,
    fn: (off: number, included: boolean, sub?: Visit) => void,
  ): void {
    const L = this.listing;
    const prefix = item.rel === '' ? 0 : item.rel.length + 1;
    for (const off of L.entries(visit.dir)) {
      const kind = L.kind(off);
      let included = kind !== 'other';
      let rel: string | undefined;
      if (needNames) {
        rel = this.relOf(visit, off);
        if (kind === 'dir' && rules.ignore.skipsDir(rel)) continue;
        if (included && rules.ignore.ignores(rel)) included = false;
        if (included && rules.exclude?.ignores(rel.slice(prefix))) included = false;
      }
      if (kind === 'dir') {
        fn(off, included, {
          dir: L.child(off),
          key: visit.key === '' ? L.nameKey(off) : `${visit.key}/${L.nameKey(off)}`,
          rel,
        });
      } else if (kind !== 'other') fn(off, included);
    }
  }

  /** A directory the walker could not read fails the COPY that needs it, and only that one. */
  protected mustRead(visit: Visit): void {
    // Not listed (pruned): only directories .dockerignore leaves out whole are, and those are never visited.
    if (visit.dir === None)
      throw new BuildError(`${displayName(visit.rel ?? decodeName(pathBytes(visit)))} is excluded by .dockerignore`);
    if (this.listing.dirFlags(visit.dir) & Flag.Unreadable) {
      throw new BuildError(
        `cannot read ${displayName(visit.rel ?? decodeName(pathBytes(visit)))} in the build context ` +
          `(${this.contextDir}): permission denied, or it changed during the build`,
      );
    }
  }

  protected relOf(visit: Visit, off: number): string {
    const name = this.listing.nameText(off);
    const base = visit.rel ?? decodeName(pathBytes(visit));
    return base === '' ? name : `${base}/${name}`;
  }

  /** Host path of an entry as bytes. */
  protected abs(visit: Visit, off: number): Buffer {
    const name = this.listing.name(off);
    const rel = visit.key === '' ? name : Buffer.concat([pathBytes(visit), SLASH, name]);
    return Buffer.concat([this.dirBytes, SLASH, rel]);
  }

  /**
   * Opens a listed file for its content beneath the context's fd, with no symlink in any component (openat2;
   * where the kernel lacks it, by path with the inode checked): a directory swapped for a symlink after the
   * listing is ELOOP, never a host file. Only the regular file the listing saw (inode); non-blocking, so a
   * FIFO put there fails. The caller closes the fd.
   */
  protected openFile(visit: Visit, off: number): number {
    const name = this.listing.name(off);
    const rel = visit.key === '' ? name : Buffer.concat([pathBytes(visit), SLASH, name]);
    const flags = fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY;
    let fd = -1;
    if (haveOpenat2) {
      const root = openSync(this.contextDir, fsc.O_RDONLY | fsc.O_DIRECTORY | O_CLOEXEC);
      try {
        fd = openat2(root, rel, flags);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOSYS' && code !== 'EPERM') throw e;
        haveOpenat2 = false;
      } finally {
        closeSync(root);
      }
    }
    if (fd < 0) fd = openSync(this.abs(visit, off), flags | O_CLOEXEC);
    try {
      const st = fstatSync(fd, { bigint: true });
      if (!st.isFile() || st.ino !== this.listing.ino(off))
        throw Object.assign(new Error('no longer the file listed'), { code: 'ESTALE' });
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return fd;
  }

  protected hostOf(rel: string): string | undefined {
    if (isEscaped(rel)) return undefined;
    return rel === '' ? this.contextDir : `${this.contextDir}/${rel}`;
  }

  /** The stat cache's hash of a file, unless the file is too new for its stat to vouch for it. */
  protected known(off: number, row: ReturnType<StatCache['row']>): Buffer | undefined {
    const L = this.listing;
    if (L.flags(off) & Flag.Racy) return undefined;
    return row?.hash(L.nameKey(off), L.buf, L.statAt(off));
  }

  /** A file listed a moment ago that cannot be read now: say why, from its errno (a code, or the walker's number). */
  protected unreadable(rel: string, cause: unknown): BuildError {
    const code = typeof cause === 'number' ? errnoNames.get(cause) : (cause as NodeJS.ErrnoException | undefined)?.code;
    const why =
      code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : ['ENOENT', 'ENOTDIR', 'ELOOP', 'EXDEV', 'ESTALE', 'EINVAL'].includes(code ?? '')
          ? 'it changed during the build'
          : (code ?? (cause instanceof Error ? cause.message : 'unknown error'));
    return new BuildError(`${displayName(rel)} in the build context (${this.contextDir}) could not be read: ${why}`);
  }
}
