// Minimal typings for ssri 12 (it ships none). Only what blobs.ts uses.
declare module 'ssri' {
  export interface IntegrityOptions {
    integrity?: unknown;
    size?: number;
    algorithms?: string[];
    single?: boolean;
    strict?: boolean;
  }
  export interface Integrity {
    toString(): string;
  }
  /** A Minipass pass-through that hashes; emits 'error' (code EINTEGRITY / EBADSIZE) at end on mismatch. */
  export interface IntegrityStream {
    size: number;
    write(chunk: Buffer): boolean;
    end(): unknown;
    pipe<T extends NodeJS.WritableStream>(dest: T, opts?: { end?: boolean }): T;
    on(event: string, fn: (...args: any[]) => void): this;
    once(event: string, fn: (...args: any[]) => void): this;
  }
  export function fromHex(hex: string, algorithm: string, opts?: IntegrityOptions): Integrity;
  export function integrityStream(opts?: IntegrityOptions): IntegrityStream;
  export function checkData(
    data: Buffer | string,
    sri: Integrity | string,
    opts?: IntegrityOptions & { error?: boolean },
  ): false | unknown;
  const ssri: {
    fromHex: typeof fromHex;
    integrityStream: typeof integrityStream;
    checkData: typeof checkData;
  };
  export default ssri;
}
