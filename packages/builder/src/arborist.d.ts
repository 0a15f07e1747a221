// @npmcli/arborist ships no types; this is the one call tsbuild makes (see cli/npm.ts).
declare module '@npmcli/arborist' {
  export default class Arborist {
    constructor(options: { path: string });
    loadVirtual(): Promise<unknown>;
  }
}
