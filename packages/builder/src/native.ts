// Where the builder's native programs are (native/build/: tsbuild-walk, tsbuild-copy; built by native/build.sh):
// found from this module, whether it runs from the bundle (dist/tsbuild.cjs) or from dist/src/.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** packages/builder/native/build/NAME, or undefined when it is not built. */
export function nativeProgram(name: string): string | undefined {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, d = dirname(d)) {
    const p = join(d, 'native', 'build', name);
    if (existsSync(p)) return p;
  }
  return undefined;
}
