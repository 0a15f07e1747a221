// The container commands' one way of failing: none of their own. An error goes up to the CLI's one mapping
// (report.ts): `ERROR: message`, the exit status its errdefs code gives.
export function guarded(fn: () => Promise<number>): Promise<number> {
  return fn();
}
