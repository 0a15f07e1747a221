// One place that opens libc through ffi-rs and turns errno into Node-style errors,
// so callers can test err.code exactly as they do for node:fs failures.
// ffi-rs loads a native addon (about 0.2 s here): it is required on the first call, so
// that commands which never touch xattrs or device nodes (a cached rebuild) don't pay for it.
import type * as Ffi from 'ffi-rs';
import { type FieldType } from 'ffi-rs';
import { createRequire } from 'node:module';
import { constants as os } from 'node:os';

const LIB = 'libc';
let ffi: typeof Ffi | undefined;

function lib(): typeof Ffi {
  if (!ffi) {
    const loaded = createRequire(import.meta.url)('ffi-rs') as typeof Ffi;
    loaded.open({ library: LIB, path: 'libc.so.6' });
    ffi = loaded;
  }
  return ffi;
}

/** ffi-rs's DataType, resolved when first used. */
export const DataType = new Proxy({} as typeof Ffi.DataType, {
  get: (_t, key) => lib().DataType[key as keyof typeof Ffi.DataType],
});

const errnoNames = new Map<number, string>(Object.entries(os.errno).map(([name, n]) => [n, name]));

export class SysError extends Error {
  constructor(
    public readonly syscall: string,
    public readonly errno: number,
    public readonly path: string,
  ) {
    super(`${syscall} ${path}: ${errnoNames.get(errno) ?? errno}`);
    this.name = 'SysError';
  }
  get code(): string {
    return errnoNames.get(this.errno) ?? `E${this.errno}`;
  }
}

/** Call a libc function returning a signed integer; throws SysError when it returns -1. */
export function call(funcName: string, path: string, paramsType: FieldType[], paramsValue: unknown[]): number {
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
  if (value === -1) throw new SysError(funcName, r.errnoCode, path);
  return value;
}
