export async function main(argv: string[]): Promise<number> {
  console.error('tsbuild: not yet', argv);
  return 1;
}
