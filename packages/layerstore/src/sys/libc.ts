// One place that opens libc through ffi-rs and turns errno into Node-style errors,
// so callers can test err.code exactly as they do for node:fs failures.
import { open, load, DataType, type FieldType } from 'ffi-rs';
import { constants as os } from 'node:os';

const LIB = 'libc';
let opened = false;

function ensureOpen(): void {
  if (opened) return;
  open({ library: LIB, path: 'libc.so.6' });
  opened = true;
}

const errnoNames = new Map<number, string>(Object.entries(os.errno).map(([name, n]) => [n, name]));

export class SysError extends Error {
  constructor(public readonly syscall: string, public readonly errno: number, public readonly path: string) {
    super(`${syscall} ${path}: ${errnoNames.get(errno) ?? errno}`);
    this.name = 'SysError';
  }
  get code(): string { return errnoNames.get(this.errno) ?? `E${this.errno}`; }
}

/** Call a libc function returning a signed integer; throws SysError when it returns -1. */
export function call(funcName: string, path: string, paramsType: FieldType[], paramsValue: unknown[]): number {
  ensureOpen();
  const r = load({ library: LIB, funcName, retType: DataType.I64, paramsType, paramsValue, errno: true }) as unknown as { value: number; errnoCode: number };
  if (r.value === -1) throw new SysError(funcName, r.errnoCode, path);
  return r.value;
}

export { DataType };
