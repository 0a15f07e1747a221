// Opening the files of an untrusted tree (a build context) for their content, beneath the tree's root:
// the tree can change between its listing and the read, and a directory swapped for a symlink must not
// lead the read out of it. Every directory is opened from its parent's fd with O_NOFOLLOW, every file
// from its directory's fd the same way, through /proc/self/fd/N/NAME (no openat in node:fs). The layer
// writer reads files in path order, so it keeps the open directories as a stack: a file in the same
// directory as the last costs one open (and an fstat) as a plain open by path did.
import { closeSync, fstatSync, openSync, constants as fsc } from 'node:fs';
import { DIR_FLAGS, O_CLOEXEC } from '@tsbuild/sys';

const FILE_FLAGS = fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY | O_CLOEXEC;

function changed(what: string, how: string): Error {
  return new Error(`${what}: the file changed while it was read (${how}): not read`);
}

function because(e: unknown, dir: boolean): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ELOOP') return dir ? 'a directory on its path is now a symlink' : 'now a symlink';
  if (code === 'ENOTDIR') return 'a directory on its path is no longer a directory';
  if (code === 'ENOENT') return 'gone';
  return code ?? String(e);
}

/** A lone UTF-16 surrogate: how a caller's names spell bytes that are not UTF-8 (see BeneathReader's encode). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export class BeneathReader {
  /**
   * `encode` gives a name's bytes where its text is not plain UTF-8: a build context lists names that are not
   * UTF-8 surrogate-escaped, and such a name must be opened as its own bytes, not as the text's UTF-8.
   */
  constructor(private readonly encode?: (name: string) => Buffer) {}

  private root: string | undefined;
  private rootFd = -1;
  /** The directories open below the root, outermost first: their names and fds. */
  private readonly names: string[] = [];
  private readonly fds: number[] = [];
  /** The context-relative path of the innermost open directory ('' for the root). */
  private cur = '';

  /**
   * Opens `host`, a file below directory `root`, for reading (`what` names it in errors): only a regular
   * file reached without a symlink from `root` (which is opened as given: the caller's choice), and, when
   * `ino` is given, the same inode the listing saw.
   */
  open(root: string, host: string, what: string, ino?: bigint): number {
    const { fd: dfd, name } = this.dir(root, host, what);
    let fd: number;
    try {
      fd = openSync(this.at(dfd, name), FILE_FLAGS);
    } catch (e) {
      throw changed(what, because(e, false));
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw changed(what, 'no longer a regular file');
      if (ino !== undefined && st.ino !== Number(ino)) throw changed(what, 'another file now');
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return fd;
  }

  /**
   * The directory that holds `host` (below `root`), open, reached without a symlink, and the name in it: the fd
   * stays the reader's (valid until its next call or close()).
   */
  dir(root: string, host: string, what: string): { fd: number; name: string } {
    if (root !== this.root) this.openRoot(root);
    if (host.length <= root.length + 1 || !host.startsWith(root) || host.charCodeAt(root.length) !== 0x2f)
      throw new Error(`${what}: ${host} is not below ${root}`);
    const slash = host.lastIndexOf('/');
    const dir = slash === root.length ? '' : host.slice(root.length + 1, slash);
    if (dir !== this.cur) this.descend(dir, what);
    return { fd: this.fds.length > 0 ? this.fds[this.fds.length - 1]! : this.rootFd, name: host.slice(slash + 1) };
  }

  /** Closes every directory it holds open. */
  close(): void {
    this.pop(0);
    if (this.rootFd >= 0) closeSync(this.rootFd);
    this.rootFd = -1;
    this.root = undefined;
  }

  /** The /proc path of `name` in directory fd `dirfd`, as bytes when the name spells bytes that are not UTF-8. */
  private at(dirfd: number, name: string): string | Buffer {
    if (!this.encode || !LONE_SURROGATE.test(name)) return `/proc/self/fd/${dirfd}/${name}`;
    return Buffer.concat([Buffer.from(`/proc/self/fd/${dirfd}/`), this.encode(name)]);
  }

  private openRoot(root: string): void {
    this.close();
    this.rootFd = openSync(root, fsc.O_RDONLY | fsc.O_DIRECTORY | O_CLOEXEC);
    this.root = root;
  }

  private pop(depth: number): void {
    while (this.fds.length > depth) {
      closeSync(this.fds.pop()!);
      this.names.pop();
    }
  }

  /** Makes `dir` (context-relative, '' for the root) the innermost open directory. */
  private descend(dir: string, what: string): void {
    const parts = dir === '' ? [] : dir.split('/');
    let keep = 0;
    while (keep < this.names.length && keep < parts.length && this.names[keep] === parts[keep]) keep++;
    this.pop(keep);
    this.cur = parts.slice(0, keep).join('/');
    for (let i = keep; i < parts.length; i++) {
      const name = parts[i]!;
      if (name === '' || name === '.' || name === '..') throw new Error(`${what}: not a plain relative path`);
      const parent = this.fds.length > 0 ? this.fds[this.fds.length - 1]! : this.rootFd;
      let fd: number;
      try {
        fd = openSync(this.at(parent, name), DIR_FLAGS | O_CLOEXEC);
      } catch (e) {
        throw changed(what, because(e, true));
      }
      this.fds.push(fd);
      this.names.push(name);
      this.cur = i === 0 ? name : `${this.cur}/${name}`;
    }
  }
}
