// Listing a build context fast. Node pays ~15 us per lstat for its Stats objects, and GNU
// find's text cost as much again to parse; native/walk.c (tsbuild-walk) does getdents64 and
// fstatat only and prints one binary record. A small context is listed here in JS into the same
// record (spawning a process costs more than that), and so is any context when the native
// walker is missing. Neither follows a symlink; both keep names as bytes.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  type BigIntStats,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { EntryHead, Flag, Listing, Magic, None, TableRow } from './listing.js';
import { trace, tracing } from '../trace.js';
import { nativeProgram } from '../native.js';

/** Up to this many entries the JS walker is faster than starting tsbuild-walk. */
export const SmallContext = 150;

/** As in walk.c: a file whose ctime is this recent may change again within its timestamp tick. */
export const RacyNs = 100_000_000n;

class TooBig extends Error {}

/**
 * Lists `dir` (the build context) into a Listing. `sizeHint` is the entry count of the last
 * listing of this context (the stat cache keeps it): a large context goes to the native walker
 * straight away, a small or unknown one is tried in JS first. `signal` ends a native walk under
 * way (its process killed and reaped before the listing rejects). `started`: that walk, already under way.
 */
export async function listContext(
  dir: string,
  sizeHint = 0,
  prune: string[] = [],
  walker: string | undefined = nativeWalker(),
  signal?: AbortSignal,
  started?: SpawnedWalker,
): Promise<Listing> {
  if (started && walker) {
    // A walk bin/tsbuild.cjs started with these very arguments (ContextStart checked them).
    try {
      const args = walkArgs(dir, prune);
      const out = await retried(awaitWalker(started, walker, args, signal), walker, args, undefined, signal);
      return traced(Listing.parse(out), 'tsbuild-walk');
    } catch (e) {
      if (!(e instanceof WalkerUnavailable)) throw e;
      return traced(walkInJs(dir, Infinity, prune), `js; ${e.message}`);
    }
  }
  if (!walker) return traced(walkInJs(dir, Infinity, prune), 'js');
  if (sizeHint <= SmallContext) {
    try {
      return traced(walkInJs(dir, SmallContext, prune), 'js');
    } catch (e) {
      if (!(e instanceof TooBig)) throw e;
    }
  }
  try {
    return traced(await walkNative(walker, dir, prune, signal), 'tsbuild-walk');
  } catch (e) {
    if (!(e instanceof WalkerUnavailable)) throw e;
    return traced(walkInJs(dir, Infinity, prune), `js; ${e.message}`);
  }
}

function traced(l: Listing, how: string): Listing {
  // entryCount reads every directory's row: only when someone looks.
  if (tracing) trace(`context listed (${how}): ${l.dirs} directories, ${l.entryCount()} entries`);
  return l;
}

let located: string | undefined | null = null;

/** packages/builder/native/build/tsbuild-walk, from the bundle (dist/) or from dist/src/context/. */
export function nativeWalker(): string | undefined {
  if (located !== null) return located;
  return (located = nativeProgram('tsbuild-walk'));
}

/**
 * tsbuild-walk could not be started (a noexec mount, a binary for another machine): the callers
 * do the same work in JS, slower, and this process stops trying the binary.
 */
export class WalkerUnavailable extends Error {}

/**
 * A tsbuild-walk started: its output files (undefined: pipes, read into the chunks) and its end, listened
 * for from the start (an end nobody listens for is lost). bin/tsbuild.cjs makes one too, before the bundle
 * loads (EarlyWalk): keep the two alike.
 */
export interface SpawnedWalker {
  child: ChildProcess;
  out: number | undefined;
  err: number | undefined;
  chunks: Buffer[];
  errChunks: Buffer[];
  /** Once the process is reaped; `error` when it could not be run. */
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>;
}

/**
 * Runs tsbuild-walk to its end: its whole stdout, or its own complaint as the error. `signal` kills it
 * (SIGKILL); the promise then rejects once the process is reaped, so no walker outlives a caller that
 * gave up on it.
 */
export async function runWalker(walker: string, args: string[], stdin?: Input, signal?: AbortSignal): Promise<Buffer> {
  if (signal?.aborted) throw signal.reason as Error;
  return retried(awaitWalker(spawnWalker(walker, args, stdin), walker, args, signal), walker, args, stdin, signal);
}

/**
 * Through files in the temp directory, a walker fails where that filesystem is full or the file size is
 * limited (its listing, and often its complaint, cannot be written): again through pipes, which take any
 * size. A walker that fails anyway says so there, in its own words.
 */
async function retried(
  first: Promise<Buffer>,
  walker: string,
  args: string[],
  stdin: Input | undefined,
  signal: AbortSignal | undefined,
): Promise<Buffer> {
  try {
    return await first;
  } catch (e) {
    if (!(e instanceof ThroughFiles)) throw e;
    return awaitWalker(spawnWalker(walker, args, stdin, false), walker, args, signal);
  }
}

/**
 * A walker's standard input: one buffer, or pieces made as it reads them (a 200,000-file context's paths to hash
 * are 15 MB as one buffer); iterated afresh if the walker is run again.
 */
export type Input = Buffer | Iterable<Buffer>;

/** A walker that failed while its output went to files. */
class ThroughFiles extends Error {}

export function spawnWalker(walker: string, args: string[], stdin?: Input, files = true): SpawnedWalker {
  // The output goes to unnamed files, not pipes: a pipe holds 64 KiB, so a walker that is done
  // would wait for this thread to drain it chunk by chunk, a turn of the event loop each, while the
  // build is busy elsewhere; a file takes the whole listing at once, read here in one go. And with
  // no pipe to see to its end, 'close' follows the walker's exit at once.
  const out = files ? unnamedFile() : undefined;
  const err = out === undefined ? undefined : unnamedFile();
  let child: ChildProcess;
  try {
    child = spawn(walker, args, { stdio: [stdin ? 'pipe' : 'ignore', out ?? 'pipe', err ?? 'pipe'] });
  } catch (e) {
    closeOutputs(out, err);
    throw e;
  }
  const chunks: Buffer[] = [];
  child.stdout?.on('data', (b: Buffer) => chunks.push(b));
  const errChunks: Buffer[] = [];
  child.stderr?.on('data', (b: Buffer) => errChunks.push(b));
  const ended = new Promise<Awaited<SpawnedWalker['ended']>>((resolve) => {
    // Not started (no pid): no 'close' may follow. Started, it is reaped first.
    child.on('error', (error) => {
      if (child.pid === undefined) resolve({ code: null, signal: null, error });
      else child.once('close', () => resolve({ code: null, signal: null, error }));
    });
    child.on('close', (code, sig) => resolve({ code, signal: sig }));
  });
  if (stdin) {
    const to = child.stdin!;
    to.on('error', () => {});
    if (Buffer.isBuffer(stdin)) to.end(stdin);
    else {
      // A piece at a time, the next when the pipe has taken the last: a walker that dies leaves the rest unmade.
      const pieces = stdin[Symbol.iterator]();
      const more = (): void => {
        for (let r = pieces.next(); !r.done; r = pieces.next())
          if (!to.write(r.value)) return void to.once('drain', more);
        to.end();
      };
      more();
    }
  }
  return { child, out, err, chunks, errChunks, ended };
}

/** The end of a walker started by spawnWalker or by bin/tsbuild.cjs; its output files closed then. */
export async function awaitWalker(
  w: SpawnedWalker,
  walker: string,
  args: string[],
  signal?: AbortSignal,
): Promise<Buffer> {
  const kill = (): void => void w.child.kill('SIGKILL');
  if (signal?.aborted) kill();
  else signal?.addEventListener('abort', kill, { once: true });
  try {
    const { code, signal: sig, error } = await w.ended;
    if (signal?.aborted) throw signal.reason as Error;
    if (error) {
      if (walker === located) located = undefined;
      throw new WalkerUnavailable(`cannot run ${walker}: ${(error as NodeJS.ErrnoException).code ?? error.message}`);
    }
    if (code !== 0) {
      const err = (w.err !== undefined ? readAll(w.err) : Buffer.concat(w.errChunks)).toString();
      throw new (w.out === undefined ? Error : ThroughFiles)(
        err.trim().replace(/^tsbuild-walk: /, '') ||
          `tsbuild-walk ${args[0]} ${sig ? `was killed by ${sig}` : `exited ${code}`}`,
      );
    }
    return w.out === undefined ? Buffer.concat(w.chunks) : readAll(w.out);
  } finally {
    signal?.removeEventListener('abort', kill);
    closeOutputs(w.out, w.err);
  }
}

/** A walker nobody will read: killed, reaped, its output files closed. */
export async function dropWalker(w: SpawnedWalker): Promise<void> {
  w.child.kill('SIGKILL');
  await w.ended;
  closeOutputs(w.out, w.err);
}

function closeOutputs(out: number | undefined, err: number | undefined): void {
  if (out !== undefined) closeSync(out);
  if (err !== undefined) closeSync(err);
}

// O_TMPFILE, which fs.constants lacks: __O_TMPFILE (020000000 on x86 and the asm-generic architectures,
// arm64 among them) with the platform's O_DIRECTORY.
const O_TMPFILE = 0o20000000 | constants.O_DIRECTORY;

/**
 * A file with no name in the temp directory (gone when closed), or undefined where the filesystem has none. Also
 * where large per-entry records wait out of memory (the stat cache's new rows, the copier's names).
 */
export function unnamedFile(): number | undefined {
  try {
    return openSync(tmpdir(), O_TMPFILE | constants.O_RDWR, 0o600);
  } catch {
    return undefined; // EOPNOTSUPP, EISDIR (no O_TMPFILE), a missing temp directory: a pipe then
  }
}

function readAll(fd: number): Buffer {
  const size = fstatSync(fd).size;
  const b = Buffer.allocUnsafe(size);
  for (let at = 0; at < size;) {
    const n = readSync(fd, b, at, size - at, at);
    if (n === 0) throw new Error('tsbuild-walk: its output file was cut short');
    at += n;
  }
  return b;
}

/** tsbuild-walk's arguments for listing `dir` without looking into `prune`. */
export const walkArgs = (dir: string, prune: string[]): string[] => [dir, ...prune.flatMap((p) => ['--prune', p])];

async function walkNative(walker: string, dir: string, prune: string[], signal?: AbortSignal): Promise<Listing> {
  return Listing.parse(await runWalker(walker, walkArgs(dir, prune), undefined, signal));
}

interface Child {
  name: Buffer;
  st: BigIntStats;
  link?: Buffer;
}

/**
 * The same record walk.c prints, made with Node's fs (names as Buffers throughout). `prune`:
 * context-relative directories listed but not looked into.
 */
export function walkInJs(dir: string, limit: number, prune: string[] = []): Listing {
  const pruned = new Set(prune.map((p) => Buffer.from(p).toString('latin1')));
  const start = BigInt(Date.now()) * 1_000_000n;
  const blocks: Buffer[] = [Buffer.from(Magic, 'latin1')];
  let at = 8;
  const table: Buffer[] = [];
  let seen = 0;

  // Returns the directory's index and its flags; fills its table row once its children are done.
  function list(path: Buffer, rel: string, readable: boolean): { index: number; flags: number; sig: Buffer } {
    const index = table.length;
    const row = Buffer.alloc(TableRow);
    table.push(row);
    let names: Buffer[] = [];
    if (readable) {
      try {
        names = readdirSync(path, { encoding: 'buffer' });
      } catch {
        readable = false;
      }
    }
    if (!readable) {
      row.writeBigUInt64LE(BigInt(at), 0);
      row.writeUInt32LE(Flag.Unreadable, 12);
      createHash('sha256').digest().copy(row, 16);
      return { index, flags: Flag.Unreadable, sig: row.subarray(16, 48) };
    }
    const kids: Child[] = [];
    for (const name of names) {
      if (++seen > limit) throw new TooBig();
      const full = Buffer.concat([path, Buffer.from('/'), name]);
      let st: BigIntStats;
      try {
        st = lstatSync(full, { bigint: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      const kid: Child = { name, st };
      if (st.isSymbolicLink()) {
        try {
          kid.link = readlinkSync(full, { encoding: 'buffer' });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw e;
        }
      }
      kids.push(kid);
    }
    kids.sort((a, b) => Buffer.compare(a.name, b.name));
    const entries = kids.map((k) => {
      const link = k.link ?? Buffer.alloc(0);
      const e = Buffer.alloc((EntryHead + k.name.length + link.length + 7) & ~7);
      let flags = 0;
      if (k.st.isFile()) {
        const ctimeSubNs = k.st.ctimeNs % 1_000_000_000n;
        if (
          k.st.ctimeNs >= start - RacyNs ||
          (ctimeSubNs === 0n && k.st.ctimeNs / 1_000_000_000n >= start / 1_000_000_000n - 1n)
        )
          flags |= Flag.Racy;
      }
      e.writeUInt32LE(Number(k.st.mode), 0);
      e.writeUInt32LE(flags, 4);
      e.writeBigUInt64LE(k.st.ino, 8);
      e.writeBigUInt64LE(k.st.size, 16);
      e.writeBigInt64LE(k.st.mtimeNs / 1_000_000_000n, 24);
      e.writeBigInt64LE(k.st.ctimeNs / 1_000_000_000n, 32);
      e.writeUInt32LE(Number(k.st.mtimeNs % 1_000_000_000n), 40);
      e.writeUInt32LE(Number(k.st.ctimeNs % 1_000_000_000n), 44);
      e.writeUInt32LE(None, 48);
      e.writeUInt16LE(k.name.length, 52);
      e.writeUInt16LE(link.length, 54);
      k.name.copy(e, EntryHead);
      link.copy(e, EntryHead + k.name.length);
      return e;
    });
    row.writeBigUInt64LE(BigInt(at), 0);
    row.writeUInt32LE(entries.length, 8);
    for (const e of entries) {
      blocks.push(e);
      at += e.length;
    }
    const h = createHash('sha256');
    let flags = 0;
    kids.forEach((k, i) => {
      const e = entries[i];
      let childSig: Buffer | undefined;
      const childRel = rel === '' ? k.name.toString('latin1') : `${rel}/${k.name.toString('latin1')}`;
      if (k.st.isDirectory() && pruned.has(childRel)) {
        e.writeUInt32LE(e.readUInt32LE(4) | Flag.Pruned, 4);
      } else if (k.st.isDirectory()) {
        const c = list(Buffer.concat([path, Buffer.from('/'), k.name]), childRel, true);
        e.writeUInt32LE(c.index, 48);
        e.writeUInt32LE(e.readUInt32LE(4) | c.flags, 4);
        flags |= c.flags & Flag.RacyBelow;
        childSig = c.sig;
      } else if (e.readUInt32LE(4) & Flag.Racy) flags |= Flag.RacyBelow;
      h.update(k.name);
      const rec = Buffer.alloc(50);
      e.copy(rec, 0, 0, 4);
      rec.writeUInt32LE(e.readUInt32LE(4) & (Flag.Unreadable | Flag.Pruned), 4);
      e.copy(rec, 8, 8, 32); // ino, size, mtime_s
      e.copy(rec, 32, 40, 44); // mtime_ns
      e.copy(rec, 36, 32, 40); // ctime_s
      e.copy(rec, 44, 44, 48); // ctime_ns
      rec.writeUInt16LE(e.readUInt16LE(54), 48);
      h.update(Buffer.concat([Buffer.of(0), rec, k.link ?? Buffer.alloc(0)]));
      if (childSig) h.update(childSig);
    });
    row.writeUInt32LE(flags, 12);
    h.digest().copy(row, 16);
    return { index, flags, sig: row.subarray(16, 48) };
  }

  const root = list(Buffer.from(dir), '', true);
  if (root.flags & Flag.Unreadable) {
    // Say why, as the native walker does.
    readdirSync(dir);
  }
  const tableAt = at;
  const trailer = Buffer.alloc(16);
  trailer.writeBigUInt64LE(BigInt(tableAt), 0);
  trailer.writeUInt32LE(table.length, 8);
  trailer.write('TSBW', 12, 'latin1');
  return Listing.parse(Buffer.concat([...blocks, ...table, trailer]));
}
