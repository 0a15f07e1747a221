// The one place that opens libc through ffi-rs and turns errno into Node-style errors, so callers
// test err.code exactly as they do for node:fs failures. Everything that needs a call Node lacks
// (openat2, the *at calls, mknod, xattrs, ioctls) goes through call() here: layerstore's unpack and
// snapshots, the builder's staging tree (Beneath), containers' volume removal.
// ffi-rs loads a native addon (about 0.2 s here): it is required on the first call, so
// that commands which never touch xattrs or device nodes (a cached rebuild) don't pay for it.
import type * as Ffi from 'ffi-rs';
import { type FieldType } from 'ffi-rs';
import { createRequire } from 'node:module';
import { realpathSync } from 'node:fs';
import { constants as os } from 'node:os';
import type { Code, Coded } from '@tsbuild/errdefs';

const LIB = 'libc';
let ffi: typeof Ffi | undefined;

function lib(): typeof Ffi {
  if (!ffi) {
    // Required by its real path: ffi-rs requires its binary (@yuuang/ffi-rs-linux-x64-gnu) as a package beside
    // it in pnpm's store, which Node finds only from the real path; the module loader has been seen to load
    // ffi-rs by the workspace's symlink instead (a bundled CLI after `--ssh`), and the binary was then not found.
    const req = createRequire(import.meta.url);
    const loaded = withoutReport(() => req(realpathSync(req.resolve('ffi-rs'))) as typeof Ffi);
    loaded.open({ library: LIB, path: 'libc.so.6' });
    ffi = loaded;
  }
  return ffi;
}

/**
 * ffi-rs picks its glibc or musl binary from `process.report.getReport().header.glibcVersionRuntime`,
 * and a diagnostic report costs 10–20 ms (it gathers the heap, handles and network interfaces): most of
 * what loading ffi-rs costs, in every build with a RUN step. This module opens glibc's `libc.so.6`
 * by name, so it is glibc or nothing: the answer is given while ffi-rs loads, and the real
 * getReport put back at once.
 */
function withoutReport<T>(load: () => T): T {
  const report = process.report;
  const real = report?.getReport;
  if (!report || typeof real !== 'function') return load();
  const glibc = { header: { glibcVersionRuntime: 'libc.so.6' } };
  report.getReport = (() => glibc) as unknown as typeof report.getReport;
  try {
    return load();
  } finally {
    report.getReport = real;
  }
}

/** ffi-rs's DataType, resolved when first used. */
export const DataType = new Proxy({} as typeof Ffi.DataType, {
  get: (_t, key) => lib().DataType[key as keyof typeof Ffi.DataType],
});

const errnoNames = new Map<number, string>(Object.entries(os.errno).map(([name, n]) => [n, name]));

/**
 * Codes that mean a path would have left the tree or gone through a link where none may be: the
 * input (a layer, a COPY source) is bad, so `failed` in errdefs' terms. Any other errno is a system
 * error like node:fs's, `unknown`.
 */
const ESCAPES = new Set(['ELOOP', 'EXDEV']);

/** A failed libc call: err.code as node:fs gives it ('ELOOP'), err.errdef its errdefs code. */
export class SysError extends Error implements Coded {
  readonly code: string;
  readonly errdef: Code;
  constructor(
    public readonly syscall: string,
    public readonly errno: number,
    public readonly path: string,
  ) {
    const code = errnoNames.get(errno) ?? `E${errno}`;
    super(`${syscall} ${path}: ${code}`);
    this.name = 'SysError';
    this.code = code;
    this.errdef = ESCAPES.has(code) ? 'failed' : 'unknown';
  }
}

/**
 * Calls libc's funcName, which returns a signed integer; throws SysError when it returns -1. A call
 * through syscall(2) names the system call in the error: `syscall` says which one is meant.
 */
export function call(
  funcName: string,
  path: string,
  paramsType: FieldType[],
  paramsValue: unknown[],
  syscall = funcName,
): number {
  const r = lib().load({
    library: LIB,
    funcName,
    retType: DataType.I64,
    paramsType,
    paramsValue,
    errno: true,
  }) as unknown as { value: number; errnoCode: number };
  // Read as a 64-bit value, a C int's -1 comes back as 4294967295: the low 32 bits, signed, are
  // the result (every function called here returns an int or a size below 2 GiB).
  const value = r.value | 0;
  if (value === -1) throw new SysError(syscall, r.errnoCode, path);
  return value;
}
